"""slm-curator: a Spark pipeline that curates pretraining text and measures what the curation did."""

from slm_curator.spark_worker import in_spark_worker, lazy_zip_invalidation

if in_spark_worker():  # a Spark Python worker unpickling one of our UDFs: its later tasks start faster
    lazy_zip_invalidation()
