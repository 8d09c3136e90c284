"""Delta Lake tables through Spark: versioned reads, idempotent writes and merges, history.

A table is addressed by a `TableRef`: a path locally and on EMR, a Unity Catalog name
(catalog.schema.table) on Databricks; every function here takes either. Writes carry an optional
`Txn(app_id, version)`: Delta records the highest version committed per app id and silently skips a
write whose version is not newer, which is what makes a re-run of a stage on the same input a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

from slm_curator.config import StorageConfig

TXN_APP_ID_CONF = "spark.databricks.delta.write.txnAppId"
TXN_VERSION_CONF = "spark.databricks.delta.write.txnVersion"


class SchemaMismatchError(ValueError):
    """Incoming rows do not fit the table's schema; Delta's schema enforcement refused them."""


@dataclass(frozen=True)
class TableRef:
    name: str  # logical name: documents, quarantine, filtered, ...
    identifier: str  # a path, or catalog.schema.table
    is_path: bool

    def __str__(self) -> str:
        return self.identifier


@dataclass(frozen=True)
class Txn:
    """Idempotency key of one logical write: Delta commits (app_id, version) at most once."""

    app_id: str
    version: int


@dataclass(frozen=True)
class WriteResult:
    version: int | None  # table version after the call
    committed: bool  # False when the write was skipped as already done
    metrics: dict[str, int]

    @property
    def rows_inserted(self) -> int:
        return self.metrics.get("numTargetRowsInserted", self.metrics.get("numOutputRows", 0))


def table_ref(storage: StorageConfig, name: str) -> TableRef:
    if storage.catalog:
        return TableRef(name, f"{storage.catalog}.{storage.schema}.{name}", is_path=False)
    return TableRef(name, f"{storage.root.rstrip('/')}/tables/{name}", is_path=True)


def _delta_table(spark, ref: TableRef):
    from delta.tables import DeltaTable

    return (
        DeltaTable.forPath(spark, ref.identifier)
        if ref.is_path
        else DeltaTable.forName(spark, ref.identifier)
    )


def exists(spark, ref: TableRef) -> bool:
    from delta.tables import DeltaTable

    if ref.is_path:
        return DeltaTable.isDeltaTable(spark, ref.identifier)
    return spark.catalog.tableExists(ref.identifier)


def read(spark, ref: TableRef, version: int | None = None):
    """The table as a DataFrame, at `version` (time travel) when given."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(ref.identifier) if ref.is_path else reader.table(ref.identifier)


def current_version(spark, ref: TableRef) -> int | None:
    """The newest version, or None when there is no table; without Spark (spark=None) through delta-rs."""
    if spark is None:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        if not ref.is_path:
            raise ValueError(f"{ref}: a Unity Catalog table needs a Spark session")
        try:
            return DeltaTable(ref.identifier).version()
        except TableNotFoundError:
            return None
    if not exists(spark, ref):
        return None
    return int(_delta_table(spark, ref).history(1).select("version").first()[0])


def history(spark, ref: TableRef, limit: int | None = None):
    table = _delta_table(spark, ref)
    return table.history(limit) if limit else table.history()


def only_inserts(spark, ref: TableRef, since: int, until: int) -> bool:
    """True when every commit after `since` up to `until` only added rows (appends, insert-only merges).

    Then the rows at `until` are those at `since` plus new ones, so a stage may process just the new ones.
    """
    from pyspark.sql import functions as F

    commits = history(spark, ref).where((F.col("version") > since) & (F.col("version") <= until)).collect()
    if len(commits) != until - since:
        return False  # history was vacuumed away: cannot tell
    for c in commits:
        params, metrics = c["operationParameters"] or {}, c["operationMetrics"] or {}
        if c["operation"] == "WRITE" and params.get("mode") == "Append":
            continue
        removed = sum(int(metrics.get(k, 0)) for k in ("numTargetRowsUpdated", "numTargetRowsDeleted"))
        if c["operation"] == "MERGE" and removed == 0:
            continue
        return False
    return True


def _last_metrics(spark, ref: TableRef) -> dict[str, int]:
    row = _delta_table(spark, ref).history(1).select("operationMetrics").first()
    return {k: int(v) for k, v in (row[0] or {}).items() if str(v).lstrip("-").isdigit()}


def check_schema(spark, df, ref: TableRef) -> None:
    """Refuse rows whose columns the table lacks or whose types differ, naming each one."""
    if not exists(spark, ref):
        return
    table_fields = {f.name: f.dataType for f in read(spark, ref).schema.fields}
    extra = [f.name for f in df.schema.fields if f.name not in table_fields]
    changed = [
        f"{f.name} ({f.dataType.simpleString()} into {table_fields[f.name].simpleString()})"
        for f in df.schema.fields
        if f.name in table_fields and f.dataType != table_fields[f.name]
    ]
    if extra or changed:
        parts = []
        if extra:
            parts.append("columns not in the table: " + ", ".join(extra))
        if changed:
            parts.append("type changes: " + ", ".join(changed))
        raise SchemaMismatchError(
            f"schema mismatch writing to Delta table {ref}: "
            + "; ".join(parts)
            + f". Table columns: {', '.join(table_fields)}. Refused: fix the writer, or migrate the table."
        )


def write(
    df,
    ref: TableRef,
    mode: str = "append",
    txn: Txn | None = None,
    partition_by: list[str] | None = None,
    user_metadata: str | None = None,
) -> WriteResult:
    """Append or overwrite; with `txn`, a repeat of the same (app_id, version) commits nothing."""
    if mode not in ("append", "overwrite"):
        raise ValueError(f"mode: {mode!r} is not allowed; allowed values: 'append', 'overwrite'")
    spark = df.sparkSession
    if mode == "append":
        check_schema(spark, df, ref)
    before = current_version(spark, ref)
    writer = df.write.format("delta").mode(mode)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    if txn is not None:
        writer = writer.option("txnAppId", txn.app_id).option("txnVersion", txn.version)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if user_metadata is not None:  # recorded in the commit: DESCRIBE HISTORY shows it
        writer = writer.option("userMetadata", user_metadata)
    try:
        writer.save(ref.identifier) if ref.is_path else writer.saveAsTable(ref.identifier)
    except Exception as exc:
        _raise_schema_error(exc, ref)
        raise
    after = current_version(spark, ref)
    committed = after != before
    return WriteResult(after, committed, _last_metrics(spark, ref) if committed else {})


def merge(
    df, ref: TableRef, keys: list[str], txn: Txn | None = None, update_matched: bool = False
) -> WriteResult:
    """Upsert by `keys`: insert rows whose key is new; update matches only when `update_matched`.

    Insert-only (the default) makes re-ingesting the same records a no-op by content, independent of
    any transaction id: the second run finds every key, commits nothing and leaves the version as is.
    """
    spark = df.sparkSession
    if not exists(spark, ref):
        return write(df, ref, "append", txn=txn)
    check_schema(spark, df, ref)
    before = current_version(spark, ref)
    target = _delta_table(spark, ref)
    if not update_matched and df.join(target.toDF().select(*keys), keys, "left_anti").isEmpty():
        return WriteResult(before, False, {"numTargetRowsInserted": 0})
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    builder = target.alias("t").merge(df.alias("s"), condition)
    if update_matched:
        builder = builder.whenMatchedUpdateAll()
    builder = builder.whenNotMatchedInsertAll()
    if txn is not None:
        spark.conf.set(TXN_APP_ID_CONF, txn.app_id)
        spark.conf.set(TXN_VERSION_CONF, str(txn.version))
    try:
        builder.execute()
    except Exception as exc:
        _raise_schema_error(exc, ref)
        raise
    finally:
        if txn is not None:
            spark.conf.unset(TXN_APP_ID_CONF)
            spark.conf.unset(TXN_VERSION_CONF)
    after = current_version(spark, ref)
    committed = after != before
    return WriteResult(after, committed, _last_metrics(spark, ref) if committed else {})


def _raise_schema_error(exc: Exception, ref: TableRef) -> None:
    text = str(exc)
    if "schema mismatch" in text.lower() or "DELTA_FAILED_TO_MERGE_FIELDS" in text:
        first = text.strip().splitlines()[0] if text.strip() else text
        raise SchemaMismatchError(f"schema mismatch writing to Delta table {ref}: {first}") from exc


def to_arrow(location: str, version: int | None = None, columns: list[str] | None = None):
    """Read a Delta table without Spark (delta-rs), as the trainer and notebooks do."""
    from deltalake import DeltaTable

    table = DeltaTable(location, version=version)
    return table.to_pyarrow_table(columns=columns)
