"""Expectation suites as data: conf/checks/<table>.yml -> typed `Suite`, checked before any Spark job.

A suite names its table, optional views (Spark SQL over `{table}`, for checks on a subset or on
exploded arrays), and its expectations. Each expectation is a Great Expectations 1.x expectation type
with its keyword arguments, a severity (`error` stops the pipeline, `warn` is logged) and the view it
runs on. Values computed at run time (the input's row count, the fewest rows a stage may keep) are
written `{$PARAMETER: name}`, the GX 1.x syntax, and supplied by the stage that runs the gate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slm_curator.errors import ConfigError
from slm_curator.fingerprint import fingerprint

SEVERITIES = ("error", "warn")
SUITE_KEYS = ("table", "description", "views", "expectations")
EXPECTATION_KEYS = ("type", "kwargs", "severity", "view", "notes")
TABLE_VIEW = "table"  # the default view: the whole table, struct columns flattened


@dataclass(frozen=True)
class ExpectationSpec:
    type: str  # snake_case GX expectation type, e.g. expect_column_values_to_be_unique
    kwargs: dict[str, Any]
    severity: str
    view: str = TABLE_VIEW
    notes: str = ""

    def parameters(self) -> set[str]:
        """Names of the run-time parameters ({$PARAMETER: name}) this expectation uses."""
        return {v["$PARAMETER"] for v in self.kwargs.values() if isinstance(v, dict) and "$PARAMETER" in v}

    def describe(self, params: dict[str, Any] | None = None) -> str:
        """`type(column=x, min_value=$min_kept_rows=120)`: the form error messages and tables show."""
        parts = []
        for key, value in self.kwargs.items():
            if isinstance(value, dict) and "$PARAMETER" in value:
                name = value["$PARAMETER"]
                shown = f"${name}" + (f"={params[name]}" if params and name in params else "")
            else:
                shown = json.dumps(value) if not isinstance(value, str) else value
                if len(shown) > 60:
                    shown = shown[:57] + "..."
            parts.append(f"{key}={shown}")
        where = "" if self.view == TABLE_VIEW else f" on view {self.view}"
        return f"{self.type}({', '.join(parts)}){where}"


@dataclass(frozen=True)
class Suite:
    name: str
    table: str
    description: str
    views: dict[str, str]
    expectations: tuple[ExpectationSpec, ...]
    source: str = ""  # the file it came from, for messages
    fingerprint: str = field(default="", compare=False)

    def parameters(self) -> set[str]:
        return set().union(*(e.parameters() for e in self.expectations)) if self.expectations else set()

    def by_view(self, skip: frozenset[int] = frozenset()) -> dict[str, list[tuple[int, ExpectationSpec]]]:
        """Expectations grouped by the view they run on, each with its index in the suite."""
        groups: dict[str, list[tuple[int, ExpectationSpec]]] = {}
        for i, e in enumerate(self.expectations):
            if i not in skip:
                groups.setdefault(e.view, []).append((i, e))
        return groups

    def unanswerable(self, params: dict[str, Any]) -> frozenset[int]:
        """Indices of expectations needing a parameter `params` lacks (their input table is absent)."""
        return frozenset(i for i, e in enumerate(self.expectations) if not e.parameters() <= set(params))


def parse_suite(name: str, data: Any, source: str = "") -> Suite:
    """Validate a suite's structure; every mistake names the file, the entry and what is allowed."""
    where = source or name
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a suite is a mapping with keys {', '.join(SUITE_KEYS)}")
    unknown = sorted(set(data) - set(SUITE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(SUITE_KEYS)}")
    table = data.get("table") or name
    views = data.get("views") or {}
    if not isinstance(views, dict) or not all(isinstance(v, str) and "{table}" in v for v in views.values()):
        raise ConfigError(f"{where}: views: each view is a SQL string that reads from {{table}}")
    if TABLE_VIEW in views:
        raise ConfigError(f"{where}: views: {TABLE_VIEW!r} is reserved for the whole table")
    entries = data.get("expectations")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: expectations: a non-empty list is required")
    specs = []
    for i, entry in enumerate(entries):
        at = f"{where}: expectations[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: a mapping with keys {', '.join(EXPECTATION_KEYS)}")
        bad = sorted(set(entry) - set(EXPECTATION_KEYS))
        if bad:
            raise ConfigError(f"{at}: unknown key {bad[0]!r}; allowed keys: {', '.join(EXPECTATION_KEYS)}")
        etype = str(entry.get("type", ""))
        if not etype.startswith("expect_"):
            raise ConfigError(f"{at}.type: {etype!r} is not an expectation type (expect_...)")
        severity = entry.get("severity", "error")
        if severity not in SEVERITIES:
            raise ConfigError(
                f"{at}.severity: {severity!r} is not allowed; allowed values: {', '.join(SEVERITIES)}"
            )
        view = entry.get("view", TABLE_VIEW)
        if view != TABLE_VIEW and view not in views:
            allowed = ", ".join([TABLE_VIEW, *views])
            raise ConfigError(f"{at}.view: {view!r} is not defined; allowed values: {allowed}")
        kwargs = entry.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise ConfigError(f"{at}.kwargs: a mapping of the expectation's arguments")
        specs.append(ExpectationSpec(etype, kwargs, severity, view, str(entry.get("notes", "")).strip()))
    return Suite(
        name=name,
        table=table,
        description=str(data.get("description", "")).strip(),
        views=dict(views),
        expectations=tuple(specs),
        source=source,
        fingerprint=fingerprint({"table": table, "views": views, "expectations": entries}),
    )


def has_suite(folder: str | Path, name: str) -> bool:
    return bool(folder) and (Path(folder) / f"{name}.yml").is_file()


def load_suite(folder: str | Path, name: str, extra=None) -> Suite:
    """The suite in `folder/<name>.yml`, plus `extra` (a stage's generated `Checks`) appended to it."""
    path = Path(folder) / f"{name}.yml"
    if not path.is_file():
        available = sorted(p.stem for p in Path(folder).glob("*.yml")) if Path(folder).is_dir() else []
        raise ConfigError(
            f"checks.suites_dir: no suite {name!r} in {folder}; available: {', '.join(available) or 'none'}"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if extra is not None and isinstance(data, dict):
        clash = sorted(set(extra.views) & set(data.get("views") or {}))
        if clash:
            raise ConfigError(f"{path}: views.{clash[0]} is generated by the stage; rename the suite's view")
        data = {
            **data,
            "views": {**(data.get("views") or {}), **extra.views},
            "expectations": [*(data.get("expectations") or []), *extra.expectations],
        }
    return parse_suite(name, data, str(path))


def suite_names(folder: str | Path) -> list[str]:
    return sorted(p.stem for p in Path(folder).glob("*.yml"))


def check_parameters(suite: Suite, params: dict[str, Any], skip: frozenset[int] = frozenset()) -> None:
    used = set().union(*(e.parameters() for i, e in enumerate(suite.expectations) if i not in skip))
    missing = sorted(used - set(params))
    if missing:
        raise ConfigError(
            f"{suite.source or suite.name}: parameter ${missing[0]} is not supplied by the stage that runs "
            f"this suite; supplied: {', '.join(sorted(params)) or 'none'}"
        )


def params_fingerprint(params: dict[str, Any]) -> str:
    return fingerprint(params)


def min_kept_rows(input_rows: int, max_drop_fraction: float) -> int:
    """The fewest rows a stage may keep: dropping more than `max_drop_fraction` of the input fails."""
    import math

    return max(0, math.ceil(input_rows * (1.0 - max_drop_fraction) - 1e-9))


def expectation_class_name(etype: str) -> str:
    return "".join(part.capitalize() for part in etype.split("_"))
