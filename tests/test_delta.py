"""Delta tables through Spark, read back by delta-rs: the contract every stage builds on."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pandas as pd  # module level: a pandas UDF's string annotations resolve here
import pytest

from slm_curator import delta
from slm_curator.delta import SchemaMismatchError, TableRef, Txn

pytestmark = pytest.mark.spark

ALL_TYPES = (
    "doc_id string, n_long long, n_int int, score double, weight float, keep boolean, "
    "ingested_at timestamp, day date, blob binary, reasons array<string>, signals map<string,double>, "
    "span struct<start:int,end:int>, embedding array<float>, price decimal(10,2)"
)


def _rows():
    ts = dt.datetime(2026, 1, 2, 3, 4, 5, 678000)
    return [
        (
            "a",
            1 << 40,
            7,
            0.25,
            1.5,
            True,
            ts,
            dt.date(2026, 1, 2),
            b"\x00\xff",
            ["short_doc", "lorem_ipsum"],
            {"gopher": 0.5},
            (0, 10),
            [0.5, -1.0],
            Decimal("12.34"),
        ),
        ("b", -3, 0, float("nan"), 0.0, False, None, None, None, [], {}, None, None, None),
    ]


def _ref(tmp_path, name="t") -> TableRef:
    return TableRef(name, str(tmp_path / name), is_path=True)


def test_round_trip_of_every_column_type_through_spark_and_delta_rs(spark, tmp_path):
    ref = _ref(tmp_path)
    df = spark.createDataFrame(_rows(), ALL_TYPES)
    result = delta.write(df, ref, "overwrite")
    assert result.committed and result.version == 0

    back = delta.read(spark, ref).orderBy("doc_id").collect()
    expected = df.orderBy("doc_id").collect()
    assert [r.asDict(recursive=True) for r in back][0] == expected[0].asDict(recursive=True)
    assert back[1]["score"] != back[1]["score"]  # NaN survives
    assert back[1]["reasons"] == [] and back[1]["signals"] == {}

    arrow = delta.to_arrow(ref.identifier).sort_by("doc_id").to_pylist()
    first = arrow[0]
    assert first["doc_id"] == "a" and first["n_long"] == 1 << 40 and first["n_int"] == 7
    assert first["keep"] is True and first["blob"] == b"\x00\xff"
    assert first["reasons"] == ["short_doc", "lorem_ipsum"]
    assert dict(first["signals"]) == {"gopher": 0.5}
    assert first["span"] == {"start": 0, "end": 10}
    assert first["embedding"] == [0.5, -1.0]
    assert first["price"] == Decimal("12.34")
    assert first["day"] == dt.date(2026, 1, 2)
    # Spark stores instants in UTC; delta-rs returns them as UTC-aware timestamps.
    assert first["ingested_at"].replace(tzinfo=None) == dt.datetime(2026, 1, 2, 3, 4, 5, 678000)
    assert arrow[1]["ingested_at"] is None and arrow[1]["reasons"] == []


def test_overwrite_replaces_rows_and_keeps_history(spark, tmp_path):
    ref = _ref(tmp_path)
    delta.write(spark.range(5), ref, "overwrite")
    delta.write(spark.range(2), ref, "overwrite")
    assert delta.read(spark, ref).count() == 2
    assert delta.read(spark, ref, version=0).count() == 5  # time travel
    ops = [r["operation"] for r in delta.history(spark, ref).orderBy("version").collect()]
    assert ops == ["WRITE", "WRITE"]


def test_idempotent_append_with_txn_commits_once(spark, tmp_path):
    ref = _ref(tmp_path)
    first = delta.write(spark.range(3), ref, "append", txn=Txn("ingest-run", 1))
    again = delta.write(spark.range(3), ref, "append", txn=Txn("ingest-run", 1))
    older = delta.write(spark.range(3), ref, "append", txn=Txn("ingest-run", 0))
    newer = delta.write(spark.range(3), ref, "append", txn=Txn("ingest-run", 2))
    assert (first.committed, again.committed, older.committed, newer.committed) == (True, False, False, True)
    assert delta.read(spark, ref).count() == 6
    assert delta.current_version(spark, ref) == 1


def test_merge_upserts_by_key_and_is_idempotent_with_txn(spark, tmp_path):
    ref = _ref(tmp_path)
    schema = "doc_id string, text string"
    delta.write(spark.createDataFrame([("a", "old"), ("b", "keep")], schema), ref, "overwrite")
    updates = spark.createDataFrame([("a", "new"), ("c", "added")], schema)

    result = delta.merge(updates, ref, keys=["doc_id"], update_matched=True, txn=Txn("merge-job", 5))
    assert result.committed
    assert result.metrics["numTargetRowsUpdated"] == 1 and result.metrics["numTargetRowsInserted"] == 1
    rows = dict(delta.read(spark, ref).collect())
    assert rows == {"a": "new", "b": "keep", "c": "added"}

    again = delta.merge(updates, ref, keys=["doc_id"], update_matched=True, txn=Txn("merge-job", 5))
    assert not again.committed and again.version == result.version
    assert spark.conf.get(delta.TXN_APP_ID_CONF, None) is None  # session left clean


def test_insert_only_merge_adds_only_new_keys_and_skips_empty_commits(spark, tmp_path):
    ref = _ref(tmp_path)
    schema = "doc_id string, text string"
    first = delta.merge(spark.createDataFrame([("a", "1"), ("b", "2")], schema), ref, keys=["doc_id"])
    assert first.committed and first.rows_inserted == 2
    same = delta.merge(spark.createDataFrame([("a", "changed"), ("b", "2")], schema), ref, keys=["doc_id"])
    assert not same.committed and same.rows_inserted == 0 and same.version == first.version
    more = delta.merge(spark.createDataFrame([("a", "x"), ("z", "26")], schema), ref, keys=["doc_id"])
    assert more.committed and more.rows_inserted == 1
    assert dict(delta.read(spark, ref).collect()) == {"a": "1", "b": "2", "z": "26"}


def test_two_concurrent_appends_both_land(spark, tmp_path):
    ref = _ref(tmp_path)
    delta.write(spark.range(0), ref, "overwrite")
    errors: list[BaseException] = []

    def append(start: int) -> None:
        try:
            delta.write(spark.range(start, start + 100), ref, "append")
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(s,)) for s in (0, 1000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    df = delta.read(spark, ref)
    assert df.count() == 200 and df.distinct().count() == 200
    assert delta.current_version(spark, ref) == 2


def test_schema_mismatch_is_refused_with_a_clear_message(spark, tmp_path):
    ref = _ref(tmp_path)
    delta.write(spark.createDataFrame([("a", 1)], "doc_id string, n long"), ref, "overwrite")
    with pytest.raises(SchemaMismatchError) as err:
        delta.write(
            spark.createDataFrame([("b", "x", 2.0)], "doc_id string, n string, extra double"), ref, "append"
        )
    message = str(err.value)
    assert str(ref) in message
    assert "columns not in the table: extra" in message
    assert "n (string into bigint)" in message
    with pytest.raises(SchemaMismatchError):
        delta.merge(spark.createDataFrame([("c", "y")], "doc_id string, n string"), ref, keys=["doc_id"])
    assert delta.read(spark, ref).count() == 1


def test_table_refs_for_paths_and_unity_catalog():
    from slm_curator.config import StorageConfig

    assert delta.table_ref(StorageConfig(root="/x/"), "documents") == TableRef(
        "documents", "/x/tables/documents", True
    )
    uc = delta.table_ref(StorageConfig(catalog="main", schema="slm"), "documents")
    assert (uc.identifier, uc.is_path) == ("main.slm.documents", False)


def test_tasks_do_not_carry_package_jars_without_python(spark):
    """Each Python task re-reads every zip on its path; Delta's dependency jars hold no Python."""
    import sys
    import zipfile
    from pathlib import Path

    import pandas as pd
    from pyspark import SparkFiles
    from pyspark.sql.functions import pandas_udf

    includes = spark.sparkContext._python_includes
    assert not [n for n in includes if "hadoop-client" in n or "parquet" in n], includes
    root = Path(SparkFiles.getRootDirectory())
    for name in (n for n in includes if n.endswith(".jar")):  # what stays carries Python (Delta's API)
        with zipfile.ZipFile(root / name) as jar:
            assert any(m.endswith(".py") for m in jar.namelist()), name

    @pandas_udf("string")
    def task_path(ids: pd.Series) -> pd.Series:
        return pd.Series([",".join(p for p in sys.path if p.endswith(".jar"))] * len(ids))

    seen = spark.range(3).select(task_path("id").alias("p")).first()["p"]
    assert "hadoop-client-runtime" not in seen


def test_only_jars_without_python_are_dropped(tmp_path, monkeypatch):
    import types
    import zipfile

    from pyspark import SparkFiles

    from slm_curator.spark import python_includes_without_plain_jars

    for name, members in {
        "plain.jar": ["a/B.class"],
        "withpy.jar": ["pkg/__init__.py"],
        "code.zip": ["m.txt"],
    }.items():
        with zipfile.ZipFile(tmp_path / name, "w") as z:
            for member in members:
                z.writestr(member, "x")
    (tmp_path / "broken.jar").write_text("not a zip")
    monkeypatch.setattr(SparkFiles, "getRootDirectory", classmethod(lambda cls: str(tmp_path)))
    includes = ["plain.jar", "withpy.jar", "code.zip", "broken.jar", "missing.jar"]
    session = types.SimpleNamespace(sparkContext=types.SimpleNamespace(_python_includes=includes))
    assert python_includes_without_plain_jars(session) == ["plain.jar"]
    assert includes == ["withpy.jar", "code.zip", "broken.jar", "missing.jar"]
    assert python_includes_without_plain_jars(session) == []


LAZY_ZIP_CHECK = r"""
import importlib, sys, zipfile, zipimport
from pathlib import Path

root = Path(sys.argv[1])
archive = root / "lib.zip"
with zipfile.ZipFile(archive, "w") as z:
    z.writestr("first_mod.py", "VALUE = 1\n")
sys.path.insert(0, str(archive))
import first_mod

reads = []
original = zipimport._read_directory
zipimport._read_directory = lambda path: reads.append(path) or original(path)
from slm_curator.spark_worker import lazy_zip_invalidation

applied = lazy_zip_invalidation()
assert applied == ((3, 10) <= sys.version_info < (3, 13)), (applied, sys.version_info)
assert lazy_zip_invalidation() is False  # once
importlib.invalidate_caches()
if applied:
    assert reads == [], reads  # nothing read until an import looks in the archive
with zipfile.ZipFile(archive, "a") as z:  # the archive changes: the next import sees it
    z.writestr("second_mod.py", "VALUE = 2\n")
importlib.invalidate_caches()
import second_mod

assert (first_mod.VALUE, second_mod.VALUE) == (1, 2)
try:
    import third_mod
except ImportError:
    pass
else:
    raise AssertionError("a module the archive lacks was imported")
print("ok", applied, len(reads))
"""


def test_zip_invalidation_is_lazy_and_still_sees_a_changed_archive(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "check.py"
    script.write_text(LAZY_ZIP_CHECK)
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_package_makes_zip_invalidation_lazy_in_spark_workers_only(spark):
    import sys
    import zipimport

    from pyspark.sql.functions import pandas_udf

    @pandas_udf("boolean")
    def lazy(ids: pd.Series) -> pd.Series:
        import zipimport

        import slm_curator  # noqa: F401  (as unpickling any of the package's UDFs does)

        return pd.Series([bool(getattr(zipimport.zipimporter, "_slm_lazy", False))] * len(ids))

    seen = {r[0] for r in spark.range(4).repartition(2).select(lazy("id")).collect()}
    assert seen == {(3, 10) <= sys.version_info < (3, 13)}
    assert not getattr(zipimport.zipimporter, "_slm_lazy", False)  # the driver's own imports untouched
