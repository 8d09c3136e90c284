"""Spark session factory: local mode with real Delta Lake jars from Maven, or the platform's session.

One function decides, so jobs never care where they run:
- an active session (Databricks notebooks and jobs, tests) is reused as is;
- under spark-submit (EMR) the JVM is already up: only runtime SQL confs are applied;
- otherwise a local session is started with the Maven packages named in config, resolved by Ivy into a
  cache that the set-up command warms. A package that cannot be resolved fails with its coordinate.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from slm_curator.config import ConfigError, PipelineConfig, load_config

log = logging.getLogger(__name__)

DELTA_SQL_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


class MavenResolutionError(RuntimeError):
    """A JVM package named in config could not be resolved; the message names the coordinate."""


def platform() -> str:
    """'databricks', 'spark-submit' (EMR, any cluster launcher) or 'local' (we start the JVM)."""
    if "DATABRICKS_RUNTIME_VERSION" in os.environ:
        return "databricks"
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # set by spark-submit before Python starts
        return "spark-submit"
    return "local"


def maven_coordinates(cfg: PipelineConfig) -> list[str]:
    """The coordinates of spark.packages on this Spark line (a name may stand for several); Spark NLP's
    too when the score stage runs on it."""
    names = list(cfg.spark.packages)
    if cfg.score.backend == "sparknlp" and "spark_nlp" not in names and "spark_nlp" in cfg.maven.packages:
        names.append("spark_nlp")
    return [c for name in names for c in cfg.maven.packages[name].split(",")]


def ivy_dir(cfg: PipelineConfig) -> Path:
    """maven.ivy_dir, else $HOME/.ivy2.5.2 (Spark 4's default name), always passed to Spark as spark.jars.ivy."""
    return Path(cfg.maven.ivy_dir).expanduser() if cfg.maven.ivy_dir else Path.home() / ".ivy2.5.2"


def cached_jar(ivy: Path, coordinate: str) -> Path:
    group, artifact, version = coordinate.split(":")
    return ivy / "jars" / f"{group}_{artifact}-{version}.jar"


def check_delta_matches_pyspark(cfg: PipelineConfig) -> None:
    """Delta jars are built per Spark line and Scala version; catch a mismatched pin before the JVM does.

    Delta 4.x names the Spark line (delta-spark_4.1_2.13), Delta 3.x only the Scala version
    (delta-spark_2.12, Spark 3.5); Spark 3.5's pyspark runs Scala 2.12, Spark 4's 2.13.
    """
    import pyspark

    coord = cfg.maven.packages.get("delta", "")
    artifact = coord.split(":")[1] if coord.count(":") == 2 else ""
    parts = artifact.split("_") if artifact.startswith("delta-spark_") else []
    if len(parts) == 3:  # delta-spark_<spark major.minor>_<scala>
        spark_line = parts[1]
        if not pyspark.__version__.startswith(spark_line + "."):
            raise ConfigError(
                f"maven.packages.delta: {coord} is built for Spark {spark_line}, but pyspark is "
                f"{pyspark.__version__}; install the pinned versions (constraints.txt) or change the coordinate"
            )
    elif len(parts) == 2:  # delta-spark_<scala>
        scala = "2.12" if pyspark.__version__.startswith("3.") else "2.13"
        if parts[1] != scala:
            raise ConfigError(
                f"maven.packages.delta: {coord} is built for Scala {parts[1]}, but pyspark "
                f"{pyspark.__version__} runs Scala {scala}; change the coordinate or the Spark line"
            )


def local_conf(cfg: PipelineConfig) -> dict[str, str]:
    """Every conf a local session gets: small-machine defaults, Delta, packages, then the user's."""
    scratch = Path(cfg.storage.scratch or Path(cfg.storage.root) / "_scratch")
    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": str(cfg.spark.show_progress).lower(),
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={scratch / 'derby'}",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        **DELTA_SQL_CONF,
    }
    if cfg.maven.resolve:
        coords = maven_coordinates(cfg)
        if coords:
            conf["spark.jars.packages"] = ",".join(coords)
        # Always explicit: Spark's default is Java's user.home (the passwd entry), which need not be $HOME,
        # so without it the jars land where `--check` and the EMR test do not look.
        conf["spark.jars.ivy"] = str(ivy_dir(cfg))
        if cfg.maven.repositories:
            conf["spark.jars.repositories"] = ",".join(cfg.maven.repositories)
        excluded = cfg.maven.excludes.get(cfg.maven.spark_line, [])
        if excluded:
            conf["spark.jars.excludes"] = ",".join(excluded)
    if cfg.score.backend == "sparknlp":
        # ONNX Runtime's threads per Spark NLP task: the cores a task has, as the Python backends use.
        conf["spark.jsl.settings.onnx.intraOpNumThreads"] = str(cfg.score.threads or 1)
    conf.update(cfg.spark.conf)
    return conf


def get_spark(cfg: PipelineConfig, app_name: str | None = None):
    """The session to use for this config: reused if one is active, else built for the platform."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    name = app_name or cfg.spark.app_name
    where = platform()
    if where != "local":
        builder = SparkSession.builder.appName(name)
        spark = builder.getOrCreate()
        if where == "spark-submit":  # --packages on EMR: the same jars on every task's Python path
            python_includes_without_plain_jars(spark)
        for key, value in cfg.spark.conf.items():
            try:
                spark.conf.set(key, value)
            except Exception:  # static confs belong on the spark-submit line; keep going
                log.warning("spark.conf.%s is static here: pass it to spark-submit with --conf", key)
        return spark

    check_delta_matches_pyspark(cfg)
    # Python workers must run this interpreter (the venv's), not whatever python3 is first on PATH;
    # SparkContext reads the worker executable from this variable only.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(cfg.spark.master).appName(name)
    for key, value in local_conf(cfg).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        missing = [
            c
            for c in maven_coordinates(cfg)
            if cfg.maven.resolve and not cached_jar(ivy_dir(cfg), c).exists()
        ]
        if missing:
            # One unresolvable package aborts the whole resolution, so every jar is missing: ask the
            # repositories which coordinate they do not have, to name the culprit rather than the first.
            absent = [c for c in missing if not _published(c, cfg.maven.repositories)] or missing
            keys = ", ".join(
                f"maven.packages.{n}"
                for n in cfg.spark.packages
                if set(cfg.maven.packages[n].split(",")) & set(absent)
            )
            raise MavenResolutionError(
                f"could not resolve Maven package {', '.join(absent)} (config key {keys}, used by "
                f"spark.packages={cfg.spark.packages}). Check that Maven Central (or a mirror in "
                "maven.repositories) is reachable and the coordinate exists, then run "
                "'python -m slm_curator.spark --warm'; or put the jar on the classpath and set "
                "maven.resolve=false."
            ) from exc
        raise
    spark.sparkContext.setLogLevel("WARN")
    python_includes_without_plain_jars(spark)
    return spark


def python_includes_without_plain_jars(spark) -> list[str]:
    """Stop shipping `--packages` jars that hold no Python to every Python task; returns those dropped.

    spark-submit adds every resolved package jar to the Python path of each task, in case one carries
    Python (as GraphFrames' does). Each task then re-reads the directory of every zip on its path
    (`importlib.invalidate_caches()` in Spark's worker): with Delta's 32 jars, hadoop-client-runtime
    among them, ~0.3 s a task, more than a pandas UDF's whole batch often takes. Jars with a .py file
    (Delta's own) stay. Only UDFs defined after this call are affected, so it runs as the session is made.
    """
    import zipfile

    from pyspark import SparkFiles

    try:
        includes = spark.sparkContext._python_includes  # what each UDF ships (pyspark 3.5 and 4.x)
        root = Path(SparkFiles.getRootDirectory())
    except Exception:  # Spark Connect has no SparkContext, and nothing to trim
        return []
    if not isinstance(includes, list):
        return []
    dropped = []
    for name in list(includes):
        if not name.lower().endswith(".jar"):
            continue
        try:
            with zipfile.ZipFile(root / name) as jar:
                has_python = any(n.endswith(".py") for n in jar.namelist())
        except (OSError, zipfile.BadZipFile):
            continue  # unreadable here: leave it as Spark set it
        if not has_python:
            includes.remove(name)
            dropped.append(name)
    if dropped:
        log.debug("not on the Python path of tasks (no Python inside): %s", ", ".join(dropped))
    return dropped


MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


def _published(coordinate: str, repositories: list[str]) -> bool:
    """True unless every repository answers 404 for the coordinate's POM (network errors count as True)."""
    import urllib.error
    import urllib.request

    group, artifact, version = coordinate.split(":")
    path = f"{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.pom"
    for repo in [*repositories, MAVEN_CENTRAL]:
        try:
            request = urllib.request.Request(f"{repo.rstrip('/')}/{path}", method="HEAD")
            with urllib.request.urlopen(request, timeout=10):
                return True
        except urllib.error.HTTPError as err:
            if err.code != 404:
                return True
        except OSError:
            return True
    return False


def warm(cfg: PipelineConfig) -> None:
    """Resolve the jars into the Ivy cache and prove Delta works, so later sessions start offline."""
    import tempfile

    spark = get_spark(cfg, app_name="slm-curator-warm")
    with tempfile.TemporaryDirectory() as tmp:
        spark.range(3).write.format("delta").save(str(Path(tmp) / "t"))
        rows = spark.read.format("delta").load(str(Path(tmp) / "t")).count()
    print(
        f"Spark {spark.version} with {', '.join(maven_coordinates(cfg))}: Delta round trip ok ({rows} rows)"
    )
    spark.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Resolve and cache the JVM packages named in config.")
    parser.add_argument("--warm", action="store_true", help="resolve jars and run a Delta round trip")
    parser.add_argument("--check", action="store_true", help="exit 1 unless every jar is already cached")
    parser.add_argument("--env", default="local")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.env, args.overrides)
        if args.check:
            missing = [c for c in maven_coordinates(cfg) if not cached_jar(ivy_dir(cfg), c).exists()]
            for coordinate in missing:
                print(f"not cached: {coordinate}")
            return 1 if missing else 0
        if args.warm:
            warm(cfg)
        else:
            print("\n".join(maven_coordinates(cfg)))
    except (ConfigError, MavenResolutionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
