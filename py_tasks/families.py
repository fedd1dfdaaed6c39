"""The one place that knows the families (docs/adding-a-family.md).

Every folder under ``models/`` is an entry of :data:`REGISTRY`: what its models are
called, whether there is one per pair, per currency or one in all, which families
it reads, how ``bqx codegen`` writes it (:class:`Template`), what cross-checks it
(``reference``: ``module:function``), whether it is a feature or a target, its
AirTable stage code, what codegen writes for it besides the template (its YAML columns,
model tests and singular-test queries: functions of ``py_tasks/family_columns.py``, which
is part of the registry) and the flags by which the bench, the report and the export find
it (:data:`FLAGS`). Its column names are never listed here: :func:`columns` reads them
from the family's generated YAML, ``models/<family>/_<family>__models.yml``.

Codegen, the cross-check (``--family`` and its dispatch), the demo, the bench, the
export (``--families``), the report and the AirTable stage map read this module;
``tests/python/test_families.py`` fails when a models folder is not listed here, when a
listed folder lacks its models, YAML, docs blocks, reference or stage, or when a module
of ``py_tasks/`` other than the registry and the cross-check modules names a family.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from . import family_columns as fc
from .config import BQX_STATS, REG_STATS, pair_rows, project_dir
from .errors import BqxError
from .stage_map import STAGE_MAP_FILE, Stage, _read_stage_map

PER_PAIR = "pair"
PER_CURRENCY = "currency"
GLOBAL = "global"

FEATURE = "feature"  # a per-pair family of features: exported, cross-checked
TARGET = "target"  # what the models learn to predict: cross-checked, not a feature
INPUT = "input"  # the bars and the rate index the families read
FIXTURE = "fixture"  # given rows of the dbt unit tests


@dataclass(frozen=True)
class Template:
    """How ``bqx codegen`` writes one model per pair: ``sql`` is a str.format template
    with {pair}, {base}, {quote}, {base_related}, {quote_related}; ``description``
    with {pair}."""

    sql: str
    description: str


@dataclass(frozen=True)
class Coverage:
    """What ``bqx report`` counts as a family's coverage: per window W of dbt var
    ``windows_var`` (else ``fallback_var``), the ``columns(W)`` that must be non-NULL
    after ``warmup(W, s)`` leading bars of a pair, s being the bqx window of var
    ``reg_bqx_source_column`` (15 for w15_bqx_return). ``warmup_text``: the same in
    words, with {s}."""

    windows_var: str
    warmup: Callable[[int, int], int]
    warmup_text: str
    columns: Callable[[int], tuple[str, ...]]
    fallback_var: str = ""


# Family.flags: what the modules outside the registry ask by flag instead of by name
REGRESSION = "regression"  # made by reg_terms: the bench's (a) to (e) build and test it
BENCH_BASELINE = "bench_baseline"  # bench: its compiled query is (q); (t) is per its row
CROSS_PAIR = "cross_pair"  # reads the other pairs' models: the bench's (f), (g) need all pairs
PARABOLA = "parabola"  # its fit of the rate index is the report's parabola plot
BUILD_HINT = "build_hint"  # `+<family>_<pair>` is the export's hint when nothing is built
FLAGS = frozenset({REGRESSION, BENCH_BASELINE, CROSS_PAIR, PARABOLA, BUILD_HINT})


@dataclass(frozen=True)
class Family:
    """One folder under ``models/`` and what the Python side needs to know of it."""

    name: str
    role: str  # FEATURE, TARGET, INPUT or FIXTURE
    grain: str  # PER_PAIR, PER_CURRENCY or GLOBAL
    upstream: tuple[str, ...] = ()  # the registry entries its models read
    template: Template | None = None  # codegen's template (generated families)
    reference: str = ""  # "module:function": the independent reference of its cross-check
    stage: str = ""  # AirTable Stage Code ("": not tracked in AirTable)
    docs: bool = True  # has models/<name>/_<name>__docs.md
    coverage: Coverage | None = None  # counted by `bqx report`'s coverage (None: not counted)
    # codegen (py_tasks/family_columns.py): the YAML columns after ts_utc, (vars, pair) -> list,
    # the model tests, (pair, vars) -> list, and the per-pair query (ts_utc, feature,
    # past_warmup) of the singular coverage test, (pair, vars) -> str (None: not in it)
    yaml_columns: Callable[[dict, str], list] | None = None
    model_tests: Callable[[str, dict], list] | None = None
    coverage_sql: Callable[[str, dict], str] | None = None
    # the singular alignment test: this family's regression terms warm up no earlier than
    # those of family ``aligned_with`` on the same timestamps ("": not tested)
    aligned_with: str = ""
    # what the bench, the report and the export ask of it (see FLAGS)
    flags: frozenset[str] = frozenset()
    bench_target: float = 0.0  # bench (t): its dbt run per row / the baseline's, at most

    def has(self, flag: str) -> bool:
        if flag not in FLAGS:
            raise BqxError(f"unknown family flag '{flag}' (flags: {', '.join(sorted(FLAGS))})")
        return flag in self.flags

    @property
    def folder(self) -> Path:
        """The models folder, relative to the project."""
        return Path("models") / self.name

    @property
    def yaml_path(self) -> Path:
        return self.folder / f"_{self.name}__models.yml"

    @property
    def docs_path(self) -> Path:
        return self.folder / f"_{self.name}__docs.md"

    def model(self, key: str) -> str:
        """The model of one pair (or currency): ``{name}_{key}``."""
        if self.grain == GLOBAL:
            return self.name
        return f"{self.name}_{key}"

    @property
    def reference_module(self) -> str:
        return self.reference.partition(":")[0]

    def reference_function(self):
        """The reference function itself (imports its module)."""
        module, _, func = self.reference.partition(":")
        if not module or not func:
            raise BqxError(f"family {self.name} names no cross-check reference")
        return getattr(importlib.import_module(module), func)


_PAIR_SOURCE = "    source=ref('rate_index'),\n"

REGISTRY: tuple[Family, ...] = (
    Family("staging", INPUT, GLOBAL),
    Family("rate_index", INPUT, GLOBAL, upstream=("staging",),
           reference="py_tasks.crosscheck_bars:rate_index"),
    Family(
        "bqx", FEATURE, PER_PAIR, upstream=("rate_index",),
        template=Template(
            sql=(
                "{{{{ bqx_momentum(\n"
                + _PAIR_SOURCE
                + "    price_column='rate_index',\n"
                "    windows=var('bqx_windows'),\n"
                "    pair='{pair}',\n"
                ") }}}}\n"
            ),
            description="Backward momentum (BQX) of {pair}'s rate index.",
        ),
        reference="py_tasks.crosscheck_bars:bqx_stats",
        coverage=Coverage("bqx_windows", lambda w, s: w, "W bars",
                          lambda w: tuple(f"w{w}_bqx_{c}" for c in BQX_STATS)),
        yaml_columns=fc.bqx_columns, model_tests=fc.bqx_tests, coverage_sql=fc.bqx_coverage_sql,
    ),
    Family(
        "reg_rate", FEATURE, PER_PAIR, upstream=("rate_index",),
        template=Template(
            sql=(
                "{{{{ reg_terms(\n"
                + _PAIR_SOURCE
                + "    y_column='rate_index',\n"
                "    windows=var('reg_windows'),\n"
                "    pair='{pair}',\n"
                ") }}}}\n"
            ),
            description="Rolling quadratic-regression terms of {pair}'s rate index.",
        ),
        reference="py_tasks.crosscheck_bars:reg_fit",
        stage="BQX-2.11",
        coverage=Coverage("reg_windows", lambda w, s: w - 1, "W - 1 bars",
                          lambda w: tuple(f"w{w}_{c}" for c in REG_STATS)),
        yaml_columns=fc.reg_rate_columns, model_tests=fc.reg_rate_tests,
        coverage_sql=fc.reg_rate_coverage_sql,
        flags=frozenset({REGRESSION, BENCH_BASELINE, PARABOLA}),
    ),
    Family(
        "reg_bqx", FEATURE, PER_PAIR, upstream=("bqx",),
        template=Template(
            sql=(
                "{{{{ reg_terms(\n"
                "    source=ref('bqx_{pair}'),\n"
                "    y_column=var('reg_bqx_source_column'),\n"
                "    windows=var('reg_windows'),\n"
                ") }}}}\n"
            ),
            description="Rolling quadratic-regression terms of {pair}'s BQX momentum "
            "(y = var reg_bqx_source_column, default w15_bqx_return).",
        ),
        reference="py_tasks.crosscheck_bars:reg_fit",
        stage="BQX-2.12",
        coverage=Coverage("reg_windows", lambda w, s: s + w - 1, "{s} + W - 1 bars",
                          lambda w: tuple(f"w{w}_{c}" for c in REG_STATS)),
        yaml_columns=fc.reg_bqx_columns, model_tests=fc.reg_bqx_tests,
        coverage_sql=fc.reg_bqx_coverage_sql, aligned_with="reg_rate",
        flags=frozenset({REGRESSION, BUILD_HINT}),
    ),
    Family(
        "correlation_bqx", FEATURE, PER_PAIR, upstream=("reg_bqx", "bqx"),
        template=Template(
            sql=(
                "{{{{ bqx_correlations(\n"
                "    source=ref('reg_bqx_{pair}'),\n"
                "    momentum=ref('bqx_{pair}'),\n"
                "    pair='{pair}',\n"
                "    base_related=[\n"
                "{base_related}"
                "    ],\n"
                "    quote_related=[\n"
                "{quote_related}"
                "    ],\n"
                "    term_windows=var('term_cov_windows'),\n"
                "    pair_windows=var('pair_corr_windows'),\n"
                ") }}}}\n"
            ),
            description="Term covariances of {pair}'s reg_bqx terms and cross-pair correlations "
            "of its BQX return with its base- and quote-related pairs.",
        ),
        reference="py_tasks.crosscheck_correlation:check_correlation",
        stage="BQX-2.14",
        coverage=Coverage(
            "term_cov_windows", lambda w, s: s + 2 * w - 2, "{s} + 2W - 2 bars",
            lambda w: tuple(f"{c}_{w}min" for c in
                            ("cov_quad_lin_bqx", "cov_resid_quad_bqx", "cov_resid_lin_bqx")),
            fallback_var="reg_windows",
        ),
        yaml_columns=fc.correlation_columns, model_tests=fc.correlation_tests,
        flags=frozenset({CROSS_PAIR}),
    ),
    Family(
        "technical", FEATURE, PER_PAIR, upstream=("rate_index", "bqx"),
        template=Template(
            sql=(
                "{{{{ technical(\n"
                + _PAIR_SOURCE
                + "    momentum=ref('bqx_{pair}'),\n"
                "    pair='{pair}',\n"
                "    ma_windows=var('ma_windows'),\n"
                ") }}}}\n"
            ),
            description="Technical indicators of {pair}'s rate-index bar, as TA-Lib computes "
            "them.",
        ),
        reference="py_tasks.crosscheck_technical:technical_references",
        yaml_columns=fc.technical_columns, model_tests=fc.technical_tests, bench_target=3.0,
    ),
    Family(
        "bollinger", FEATURE, PER_PAIR, upstream=("rate_index", "bqx"),
        template=Template(
            sql=(
                "{{{{ bollinger(\n"
                + _PAIR_SOURCE
                + "    momentum=ref('bqx_{pair}'),\n"
                "    pair='{pair}',\n"
                "    windows=var('bollinger_windows'),\n"
                ") }}}}\n"
            ),
            description="Bollinger bands of {pair}'s rate index and BQX momentum "
            "(w15_bqx_return).",
        ),
        reference="py_tasks.crosscheck_technical:bollinger_references",
        yaml_columns=fc.bollinger_columns, model_tests=fc.bollinger_tests, bench_target=1.0,
    ),
    Family("unit_fixtures", FIXTURE, GLOBAL, docs=False),
)

_BY_NAME = {fam.name: fam for fam in REGISTRY}


def get(name: str) -> Family:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise BqxError(f"unknown family '{name}': the registry (py_tasks/families.py) lists "
                       f"{', '.join(_BY_NAME)}") from None


def generated() -> tuple[Family, ...]:
    """The families ``bqx codegen`` writes, one model per pair, in registry order."""
    return tuple(fam for fam in REGISTRY if fam.template is not None)


def features() -> tuple[Family, ...]:
    """The per-pair feature families (exported by ``bqx export``), in registry order."""
    return tuple(fam for fam in REGISTRY if fam.role == FEATURE)


def names(fams: tuple[Family, ...] | list[Family]) -> tuple[str, ...]:
    return tuple(fam.name for fam in fams)


def with_flag(flag: str) -> tuple[Family, ...]:
    """The families with ``flag`` (one of :data:`FLAGS`), in registry order."""
    return tuple(fam for fam in REGISTRY if fam.has(flag))


def one_with_flag(flag: str) -> Family:
    """The one family with ``flag``; a BqxError unless exactly one has it."""
    found = with_flag(flag)
    if len(found) != 1:
        raise BqxError(f"the registry gives flag {flag} to {len(found)} families, not one")
    return found[0]


def checked_by(module: str) -> tuple[str, ...]:
    """The per-pair families whose cross-check reference lives in ``module``
    (e.g. ``py_tasks.crosscheck_technical``), in registry order."""
    return tuple(
        fam.name for fam in REGISTRY
        if fam.role in (FEATURE, TARGET) and fam.reference_module == module
    )


def cross_checked() -> tuple[Family, ...]:
    """Every per-pair family with a cross-check reference: ``bqx crosscheck --family``."""
    return tuple(fam for fam in REGISTRY if fam.role in (FEATURE, TARGET) and fam.reference)


def upstream_closure(name: str) -> tuple[str, ...]:
    """Every entry ``name`` reads, directly or not (not ``name`` itself)."""
    seen: list[str] = []
    todo = list(get(name).upstream)
    while todo:
        up = todo.pop(0)
        if up not in seen:
            seen.append(up)
            todo += list(get(up).upstream)
    return tuple(seen)


def registry_mismatches(stages: Sequence[Stage]) -> list[str]:
    """Where a stage map disagrees with the family registry (this module): a
    family whose stage code is missing or does not list its folder, or a family's
    folder in a stage the registry does not give it."""
    problems = []
    by_code = {s.code: s for s in stages}
    for fam in REGISTRY:
        stage = by_code.get(fam.stage) if fam.stage else None
        if fam.stage and stage is None:
            problems.append(f"family {fam.name} has stage {fam.stage} in the registry, "
                            "which the stage map lacks")
        elif stage is not None and fam.name not in stage.models:
            problems.append(f"stage {fam.stage} does not list model folder {fam.name}, "
                            "which the registry gives it")
        for other in stages:
            if fam.name in other.models and other.code != fam.stage:
                problems.append(f"stage {other.code} lists model folder {fam.name}, whose stage "
                                f"in the registry is {fam.stage or 'none'}")
    return problems


def _yaml_models(path: Path) -> dict[str, tuple[str, ...]]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise BqxError(f"{path} not found: run `bqx codegen`") from None
    return _parse_models(path, stat.st_mtime_ns, stat.st_size)


@cache
def _parse_models(path: Path, mtime_ns: int, size: int) -> dict[str, tuple[str, ...]]:
    """Parsed once per version of the file (``bqx codegen`` may rewrite it)."""
    with open(path, encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    return {
        m["name"]: tuple(c["name"] for c in m.get("columns") or [])
        for m in doc.get("models") or []
    }


def models(name: str, root: Path | None = None) -> dict[str, tuple[str, ...]]:
    """model name -> its column names, as the family's YAML lists them."""
    return _yaml_models((root or project_dir()) / get(name).yaml_path)


def columns(name: str, key: str | None = None, root: Path | None = None) -> tuple[str, ...]:
    """The columns of a family's model for ``key`` (a pair; default: its first model),
    in table order, read from ``models/<family>/_<family>__models.yml``."""
    fam = get(name)
    found = models(name, root)
    if key is not None:
        model = fam.model(key)
        if model not in found:
            raise BqxError(f"model {model} is not in {fam.yaml_path}: run `bqx codegen`")
        return found[model]
    if not found:
        raise BqxError(f"{fam.yaml_path} lists no model")
    return next(iter(found.values()))


def own_columns(name: str, root: Path | None = None) -> tuple[str, ...]:
    """The columns a family computes: its columns less the grain (ts_utc, pair) and the
    ones it copies from a family upstream of it (rate_index, w15_bqx_return)."""
    copied = {"ts_utc", "pair"}
    for up in upstream_closure(name):
        for cols in models(up, root).values():
            copied.update(cols)
    return tuple(c for c in columns(name, root=root) if c not in copied)


def problems(root: Path | None = None) -> list[str]:
    """Where the project and the registry disagree, one sentence each (empty: none):
    a models folder the registry does not list; a listed family without its folder,
    models (one per pair for a per-pair family), YAML listing them, docs blocks,
    cross-check reference (features and targets must have one) or AirTable stage."""

    root = root or project_dir()
    out: list[str] = []
    folders = sorted(p.name for p in (root / "models").iterdir() if p.is_dir())
    for name in folders:
        if name not in _BY_NAME:
            out.append(f"models/{name} is not in the family registry (py_tasks/families.py)")
    pairs = [p for p, _, _ in pair_rows()]
    for fam in REGISTRY:
        where = f"family {fam.name}"
        for up in fam.upstream:
            if up not in _BY_NAME:
                out.append(f"{where}: upstream {up} is not in the registry")
        if not (root / fam.folder).is_dir():
            out.append(f"{where}: folder {fam.folder} is missing")
            continue
        sql_models = sorted(p.stem for p in (root / fam.folder).glob("*.sql"))
        if not sql_models:
            out.append(f"{where}: {fam.folder} holds no model (.sql)")
        if not (root / fam.yaml_path).is_file():
            out.append(f"{where}: {fam.yaml_path} is missing")
        else:
            listed = _yaml_models(root / fam.yaml_path)
            unlisted = [m for m in sql_models if m not in listed]
            if unlisted:
                out.append(f"{where}: {fam.yaml_path} does not describe {', '.join(unlisted)}")
            if fam.grain == PER_PAIR:
                lacking = [fam.model(p) for p in pairs if fam.model(p) not in sql_models]
                lacking += [fam.model(p) for p in pairs if fam.model(p) not in listed]
                if lacking:
                    out.append(f"{where}: model {lacking[0]} is missing (run `bqx codegen`)")
        if fam.docs and not (root / fam.docs_path).is_file():
            out.append(f"{where}: docs blocks {fam.docs_path} are missing")
        if fam.role in (FEATURE, TARGET) and not fam.reference:
            out.append(f"{where}: a {fam.role} family needs a cross-check reference")
        if fam.reference:
            try:
                fam.reference_function()
            except (ImportError, AttributeError, BqxError) as exc:
                out.append(f"{where}: cross-check reference {fam.reference} is missing ({exc})")
    try:
        stages = _read_stage_map(root / STAGE_MAP_FILE)
    except BqxError as exc:
        out.append(exc.message)
    else:
        out += registry_mismatches(stages)
    return out
