# Sourced by the set-up scripts: the Spark line to install and run, from one variable.
#   SLM_SPARK_LINE=4.1 (default; Spark 4.1, Scala 2.13: DBR 18 LTS, EMR 8.1) or 3.5 (Spark 3.5, Scala
#   2.12: DBR 15.4/16.4 LTS, EMR 7.x). Each line has its own constraints file and its own venv
#   (.venv, .venv-3.5) unless SLM_VENV names one; the Maven jars follow the installed pyspark.
SLM_SPARK_LINE="${SLM_SPARK_LINE:-4.1}"
case "$SLM_SPARK_LINE" in
  4.1) SLM_CONSTRAINTS=constraints.txt; slm_default_venv=.venv ;;
  3.5) SLM_CONSTRAINTS=constraints-3.5.txt; slm_default_venv=.venv-3.5 ;;
  *) echo "SLM_SPARK_LINE=$SLM_SPARK_LINE is not a supported Spark line; allowed values: 4.1, 3.5" >&2; exit 2 ;;
esac
SLM_VENV="${SLM_VENV:-$slm_default_venv}"
export SLM_SPARK_LINE SLM_CONSTRAINTS SLM_VENV
