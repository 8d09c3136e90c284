"""Run a suite on a Spark DataFrame with Great Expectations 1.x and turn its results into outcomes.

Each view of the suite is one GX batch (a Spark DataFrame asset, whole-dataframe batch definition) with
its own expectation suite and validation definition, run with the stage's expectation parameters; when
asked, the context then renders its Data Docs site into a folder. The outcomes are plain rows
(`Outcome`), so the results table, the MLflow JSON and the error message all say the same thing.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slm_curator.checks.suites import (
    TABLE_VIEW,
    ExpectationSpec,
    Suite,
    check_parameters,
    expectation_class_name,
)

log = logging.getLogger(__name__)


class DataQualityError(RuntimeError):
    """An `error` expectation failed: the pipeline stops; the message names table, expectation, value."""


@dataclass(frozen=True)
class Outcome:
    index: int  # position in the suite
    expectation: str  # type
    description: str  # type(kwargs) with parameter values filled in
    severity: str
    view: str
    success: bool
    observed: str  # JSON of GX's observed value (or the unexpected count/percent for map expectations)
    unexpected_count: int | None
    element_count: int | None
    details: str  # JSON of GX's partial result (unexpected examples)
    exception: str

    @property
    def failed_error(self) -> bool:
        return not self.success and self.severity == "error"

    @property
    def failed_warn(self) -> bool:
        return not self.success and self.severity == "warn"


def flatten_structs(df):
    """Struct columns become `<struct>_<field>` columns, and NaN becomes null (GX ignores nulls)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType, StructType

    def nan_as_null(col, dtype):
        return F.nanvl(col, F.lit(None).cast(dtype)) if isinstance(dtype, DoubleType | FloatType) else col

    columns = []
    for f in df.schema.fields:
        if isinstance(f.dataType, StructType):
            columns += [
                nan_as_null(F.col(f"`{f.name}`.`{sub.name}`"), sub.dataType).alias(f"{f.name}_{sub.name}")
                for sub in f.dataType.fields
            ]
        else:
            columns.append(nan_as_null(F.col(f"`{f.name}`"), f.dataType).alias(f.name))
    return df.select(*columns)


def build_views(df, suite: Suite) -> dict[str, Any]:
    """The DataFrame of every view the suite uses: the flattened table and its SQL views over it."""
    spark = df.sparkSession
    table = flatten_structs(df)
    name = f"_dq_{suite.name}_{suite.fingerprint}"
    table.createOrReplaceTempView(name)
    views = {TABLE_VIEW: table}
    for view, sql in suite.views.items():
        try:
            views[view] = spark.sql(sql.replace("{table}", name))
        except Exception as exc:  # noqa: BLE001 - an AnalysisException names the column; add the view
            from slm_curator.config import ConfigError

            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise ConfigError(f"{suite.source or suite.name}: views.{view}: {first}") from exc
    return views


def _expectation(spec: ExpectationSpec, index: int):
    import great_expectations.expectations as gxe
    from great_expectations.expectations.metadata_types import FailureSeverity

    cls = getattr(gxe, expectation_class_name(spec.type), None)
    if cls is None:
        raise ValueError(f"{spec.type} is not a Great Expectations expectation")
    severity = FailureSeverity.CRITICAL if spec.severity == "error" else FailureSeverity.WARNING
    return cls(
        **spec.kwargs,
        severity=severity,
        meta={"index": index, "severity": spec.severity, "view": spec.view},
        notes=spec.notes or None,
    )


def run_suite(
    df, suite: Suite, params: dict[str, Any], docs_dir: str | None = None, skip: frozenset[int] = frozenset()
) -> tuple[list[Outcome], list[dict]]:
    """Validate `df` against `suite` (less the expectations in `skip`); outcomes and GX's result JSON.

    Two passes: every expectation with GX's BOOLEAN_ONLY result format, which needs about half the
    Spark jobs (no unexpected-value lists), then only the failed ones again with SUMMARY, for their
    observed values and examples. A passing expectation therefore records no observed value.
    With `docs_dir`, GX Data Docs (HTML) for both passes are written there.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from pyspark import StorageLevel

    check_parameters(suite, params, skip)
    specs = {i: s for i, s in enumerate(suite.expectations)}
    with tempfile.TemporaryDirectory(prefix="slm-gx-") as project:
        context = gx.get_context(mode="file", project_root_dir=project)
        # Spark's own progress bar already shows the jobs; GX's per-metric bars would interleave with it.
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        source = context.data_sources.add_spark(name="slm_curator", persist=False)
        views = build_views(df, suite)
        for view_df in views.values():
            view_df.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            started = time.time()
            first = _validate(context, source, views, suite, params, skip, "BOOLEAN_ONLY")
            failed = {i for result in first for i, r in _by_index(result) if not r["success"]}
            passed = frozenset(specs) - failed
            details = (
                _validate(context, source, views, suite, params, skip | passed, "SUMMARY") if failed else []
            )
            validated = time.time()
            if docs_dir:
                _render_docs(context, docs_dir)
            log.info(
                "checks: suite %s validated in %.1fs (%d failed)%s",
                suite.name,
                validated - started,
                len(failed),
                f", Data Docs rendered in {time.time() - validated:.1f}s" if docs_dir else "",
            )
        finally:
            for view_df in views.values():
                view_df.unpersist()
    results = {i: r for result in first for i, r in _by_index(result)}
    results.update({i: r for result in details for i, r in _by_index(result)})
    outcomes = sorted((_outcome(i, specs[i], r, params) for i, r in results.items()), key=lambda o: o.index)
    return outcomes, [result.to_json_dict() for result in first + details]


def _by_index(result) -> list[tuple[int, dict]]:
    return [(int((r.expectation_config.meta or {})["index"]), r.to_json_dict()) for r in result.results]


def _validate(context, source, views, suite: Suite, params, skip: frozenset[int], result_format: str) -> list:
    """One GX validation per view of `suite` (less `skip`); the validation results, one per view."""
    import great_expectations as gx

    results = []
    for view, members in suite.by_view(skip).items():
        name = f"{suite.name}.{view}.{result_format.lower()}"
        asset = source.add_dataframe_asset(name=name)
        batch = asset.add_batch_definition_whole_dataframe(name="whole")
        expectations = []
        for index, spec in members:
            try:
                expectations.append(_expectation(spec, index))
            except Exception as exc:  # noqa: BLE001 - a bad kwarg names its suite entry
                from slm_curator.config import ConfigError

                raise ConfigError(f"{suite.source}: expectations[{index}] ({spec.type}): {exc}") from exc
        # Built whole, then added once: a file context writes the suite on every change.
        gx_suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=gx_suite)
        )
        results.append(
            definition.run(
                batch_parameters={"dataframe": views[view]},
                expectation_parameters=params,
                result_format={"result_format": result_format, "partial_unexpected_count": 5},
            )
        )
    return results


def _render_docs(context, docs_dir: str) -> None:
    """GX Data Docs for the validation results stored in this context, as a static site in `docs_dir`."""
    context.build_data_docs()
    site = Path(context.root_directory) / "uncommitted" / "data_docs" / "local_site"
    if site.is_dir():
        import shutil

        # The fonts are 3 of the site's 4 MB per validation; the pages fall back to system fonts.
        shutil.copytree(site, docs_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("fonts"))


def _outcome(index: int, spec: ExpectationSpec, r: dict, params: dict[str, Any]) -> Outcome:
    result = r.get("result") or {}
    exc = (r.get("exception_info") or {}) if isinstance(r.get("exception_info"), dict) else {}
    raised = bool(exc.get("raised_exception"))
    if "observed_value" in result:
        observed: Any = result["observed_value"]
    elif "unexpected_count" in result:
        observed = {
            "unexpected_count": result.get("unexpected_count"),
            "unexpected_percent": result.get("unexpected_percent"),
        }
    else:
        observed = None
    details = {k: result[k] for k in ("partial_unexpected_list", "partial_unexpected_counts") if k in result}
    return Outcome(
        index=index,
        expectation=spec.type,
        description=spec.describe(params),
        severity=spec.severity,
        view=spec.view,
        success=bool(r.get("success")) and not raised,
        observed=json.dumps(observed, default=str),
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
        details=json.dumps(details, default=str)[:4000],
        exception=(exc.get("exception_message") or "")[:2000] if raised else "",
    )
