"""``bqx airtable sync``: report pipeline stages to an AirTable table.

dbt writes ``target/run_results.json`` (what ran, how it went, how long it took)
and ``target/manifest.json`` (where each node lives) after every invocation. This
module groups those results into stages with the stage map ``airtable_stages.yml``
and upserts one AirTable record per stage, keyed on ``Stage Code``. ``bqx export``
reports its own stage with :func:`report_stage`.

Configuration comes from the environment: ``AIRTABLE_API_KEY`` (a personal access
token), ``AIRTABLE_BASE_ID``, ``AIRTABLE_TABLE`` (default ``Stages``) and
``AIRTABLE_ENDPOINT_URL`` (default the public API). The token is only ever handed to
pyairtable's session header; it is never printed, logged or put in a message.

Public functions: :func:`load_stage_map`, :func:`load_run`, :func:`build_records`,
:func:`sync`, :func:`report_stage`, :func:`settings_from_env`; the decisions behind
them are in ``docs/airtable.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from .config import project_dir
from .dbtcmd import first_line
from .errors import BqxError
from .families import registry_mismatches
from .stage_map import STAGE_MAP_FILE, Stage, _read_stage_map, stage_map_path

if TYPE_CHECKING:  # pragma: no cover
    from pyairtable import Table

# --- the AirTable table --------------------------------------------------------------

STATUSES = ("Todo", "In Progress", "Done", "Failed")
KEY_FIELD = "Stage Code"
#: Field name -> the AirTable field type it must have (see docs/airtable.md).
FIELD_TYPES = {
    "Stage Code": "single line text (the key bqx upserts on)",
    "Stage ID": "single line text",
    "Status": "single select with the options Todo, In Progress, Done, Failed",
    "Actual Duration": "number (decimal, hours)",
    "Completion Date": "date (ISO format)",
    "Rows": "number (integer)",
    "Notes": "long text",
    "Invocation ID": "single line text",
}
FIELDS = tuple(FIELD_TYPES)

DEFAULT_ENDPOINT = "https://api.airtable.com"
DEFAULT_TABLE = "Stages"

# AirTable's limits (https://airtable.com/developers/web/api/rate-limits): 5 requests
# per second per base and 10 records per create/update request. pyairtable chunks
# batch_upsert by Api.MAX_RECORDS_PER_REQUEST (10); the limiter below keeps the rate.
REQUESTS_PER_SECOND = 5
RATE_WINDOW_S = 1.0
# 429 retries (urllib3 Retry inside pyairtable's session): waits 0, 1, 2, 4, 8, 16, 32 s,
# which outlasts AirTable's 30 s penalty after a 429.
RETRY_TOTAL = 7
RETRY_BACKOFF = 0.5
TIMEOUT_S = (10, 60)  # connect, read
MAX_LISTED_NODES = 20  # failing/skipped nodes named in Notes before "... and N more"

# dbt result statuses (dbt.artifacts.schemas.results.NodeStatus).
OK_STATUSES = frozenset({"success", "pass", "warn", "no-op"})
FAILED_STATUSES = frozenset({"error", "fail", "runtime error", "partial success"})
SKIPPED_STATUSES = frozenset({"skipped"})
# dbt commands whose run_results describe executed nodes (not `compile`, `docs generate`...).
EXECUTING_COMMANDS = frozenset({"build", "run", "test", "seed", "snapshot", "retry"})
TEST_TYPES = frozenset({"test", "unit_test"})


# --- the stage map -------------------------------------------------------------------
# Read by py_tasks/stage_map.py; checked against the registry by
# families.registry_mismatches.


def load_stage_map(path: str | Path | None = None) -> list[Stage]:
    """Read and check the stage map (default ``airtable_stages.yml`` in the project,
    which must agree with the family registry, py_tasks/families.py)."""
    stages = _read_stage_map(Path(path) if path else stage_map_path())
    if not path:
        problems = registry_mismatches(stages)
        if problems:
            raise BqxError(f"stage map {stage_map_path()}: {problems[0]}; the stage code of a "
                           "family is its registry entry's (py_tasks/families.py)")
    return stages


# --- dbt artifacts -------------------------------------------------------------------


@dataclass
class NodeResult:
    """One entry of run_results.json, with what the manifest says about the node."""

    unique_id: str
    resource_type: str
    name: str
    status: str
    execution_time: float
    started: dt.datetime | None
    completed: dt.datetime | None
    rows: int | None
    message: str
    folder: str | None  # models: first folder under models/ (fqn[1])
    tested_models: tuple[str, ...] = ()  # tests: unique_ids of the models they test


@dataclass
class DbtRun:
    """A dbt invocation read from run_results.json and manifest.json."""

    path: Path
    invocation_id: str
    generated_at: dt.datetime | None
    command: str
    elapsed_s: float | None
    results: list[NodeResult]
    parents: dict[str, tuple[str, ...]]  # every manifest node -> its depends_on nodes
    models_per_folder: Counter = field(default_factory=Counter)  # enabled models in the project
    model_folders: dict[str, str] = field(default_factory=dict)  # model unique_id -> fqn[1]
    tests_total: int = 0  # data tests + unit tests in the project
    warnings: list[str] = field(default_factory=list)


def default_run_results_path() -> Path:
    """``<target-path>/run_results.json``: ``DBT_TARGET_PATH``, else dbt_project.yml's
    ``target-path``, else ``target``, relative to the project."""
    root = project_dir()
    target = os.environ.get("DBT_TARGET_PATH")
    if not target:
        try:
            with open(root / "dbt_project.yml", encoding="utf-8") as fh:
                target = (yaml.safe_load(fh) or {}).get("target-path")
        except (OSError, yaml.YAMLError):
            target = None
    return (root / (target or "target")) / "run_results.json"


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise BqxError(
            f"{what} {path} not found: run dbt first (e.g. `bqx dbt -- build`) "
            "or pass --run-results PATH"
        ) from None
    except (OSError, ValueError) as exc:
        raise BqxError(f"cannot read {what} {path}: {exc}") from None
    if not isinstance(data, dict):
        raise BqxError(f"{what} {path} is not a dbt artifact (expected a JSON object)")
    return data


def _parse_ts(value: Any) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        ts = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.timezone.utc)


def _tested_models(uid: str, node: dict[str, Any]) -> tuple[str, ...]:
    """The models a test checks: ``attached_node`` (generic tests), the unit test's
    ``model``, else the models it depends on (singular tests)."""
    attached = node.get("attached_node")
    if isinstance(attached, str) and attached.startswith("model."):
        return (attached,)
    if uid.startswith("unit_test.") and node.get("model"):
        return (f"model.{node.get('package_name') or uid.split('.')[1]}.{node['model']}",)
    deps = (node.get("depends_on") or {}).get("nodes") or []
    return tuple(d for d in deps if isinstance(d, str) and d.startswith("model."))


def load_run(run_results: str | Path | None = None) -> DbtRun:
    """Read run_results.json and the manifest.json beside it."""
    path = Path(run_results) if run_results else default_run_results_path()
    results_doc = _read_json(path, "dbt run results")
    manifest_path = path.with_name("manifest.json")
    manifest = _read_json(manifest_path, "dbt manifest")
    if not isinstance(results_doc.get("results"), list):
        raise BqxError(f"{path} has no 'results' list: is it dbt's run_results.json?")
    meta = results_doc.get("metadata") or {}
    command = str((results_doc.get("args") or {}).get("which") or "")
    if command and command not in EXECUTING_COMMANDS:
        raise BqxError(
            f"{path} is from `dbt {command}`, which builds nothing: run `dbt build`, "
            "`dbt run` or `dbt test` and sync again"
        )
    nodes: dict[str, dict[str, Any]] = {}
    nodes.update(manifest.get("nodes") or {})
    nodes.update(manifest.get("unit_tests") or {})
    parents = {
        uid: tuple((node.get("depends_on") or {}).get("nodes") or ()) for uid, node in nodes.items()
    }
    per_folder: Counter = Counter()
    model_folders: dict[str, str] = {}
    tests_total = 0
    for uid, node in nodes.items():
        rtype = node.get("resource_type") or uid.split(".", 1)[0]
        if rtype == "model":
            fqn = node.get("fqn") or []
            if len(fqn) > 2:
                per_folder[fqn[1]] += 1
                model_folders[uid] = fqn[1]
        elif rtype in TEST_TYPES:
            tests_total += 1
    warnings: list[str] = []
    m_inv = (manifest.get("metadata") or {}).get("invocation_id")
    if m_inv and meta.get("invocation_id") and m_inv != meta.get("invocation_id"):
        warnings.append(
            f"{manifest_path.name} is from another dbt invocation than {path.name}; "
            "stages are mapped with the newer manifest"
        )
    results: list[NodeResult] = []
    missing = 0
    for raw in results_doc["results"]:
        uid = str(raw.get("unique_id") or "")
        node = nodes.get(uid)
        if node is None:
            missing += 1
            node = {}
        rtype = node.get("resource_type") or uid.split(".", 1)[0]
        fqn = node.get("fqn") or []
        starts = [_parse_ts(t.get("started_at")) for t in raw.get("timing") or []]
        ends = [_parse_ts(t.get("completed_at")) for t in raw.get("timing") or []]
        starts = [t for t in starts if t]
        ends = [t for t in ends if t]
        rows = (raw.get("adapter_response") or {}).get("rows_affected")
        if rtype != "model" or not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            rows = None
        results.append(
            NodeResult(
                unique_id=uid,
                resource_type=rtype,
                name=str(node.get("name") or uid.split(".")[2 if uid.count(".") >= 2 else -1]),
                status=str(raw.get("status") or "").lower(),
                execution_time=float(raw.get("execution_time") or 0.0),
                started=min(starts) if starts else None,
                completed=max(ends) if ends else None,
                rows=rows,
                message=str(raw.get("message") or ""),
                folder=fqn[1] if rtype == "model" and len(fqn) > 2 else None,
                tested_models=_tested_models(uid, node) if rtype in TEST_TYPES else (),
            )
        )
    if missing:
        warnings.append(
            f"{missing} result(s) are not in {manifest_path.name} and belong to no stage"
        )
    elapsed = results_doc.get("elapsed_time")
    return DbtRun(
        path=path,
        invocation_id=str(meta.get("invocation_id") or ""),
        generated_at=_parse_ts(meta.get("generated_at")),
        command=command,
        elapsed_s=float(elapsed) if isinstance(elapsed, (int, float)) else None,
        results=results,
        parents=parents,
        models_per_folder=per_folder,
        model_folders=model_folders,
        tests_total=tests_total,
        warnings=warnings,
    )


# --- stages from a run ---------------------------------------------------------------


@dataclass
class StageRecord:
    """What bqx sends for one stage. ``from_run`` False: a Todo placeholder, created
    when the table has no record for the stage and otherwise left alone."""

    stage: Stage
    status: str
    duration_h: float | None = None
    completion_date: str | None = None
    rows: int | None = None
    notes: str = ""
    invocation_id: str | None = None
    from_run: bool = True

    def fields(self) -> dict[str, Any]:
        if not self.from_run:
            return {"Stage Code": self.stage.code, "Stage ID": self.stage.id, "Status": "Todo"}
        return {
            "Stage Code": self.stage.code,
            "Stage ID": self.stage.id,
            "Status": self.status,
            "Actual Duration": self.duration_h,
            "Completion Date": self.completion_date,
            "Rows": self.rows,
            "Notes": self.notes,
            "Invocation ID": self.invocation_id,
        }




def _hours(nodes: Sequence[NodeResult]) -> float | None:
    """Wall span from the first started_at to the last completed_at, in hours; the sum of
    execution times when dbt recorded no timing."""
    starts = [n.started for n in nodes if n.started]
    ends = [n.completed for n in nodes if n.completed]
    if starts and ends:
        seconds = max(0.0, (max(ends) - min(starts)).total_seconds())
    else:
        seconds = sum(n.execution_time for n in nodes)
        if not seconds:
            return None
    return round(seconds / 3600.0, 6)


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED_NODES])
    more = len(names) - MAX_LISTED_NODES
    return f"{shown}, ... and {more} more" if more > 0 else shown


def _upstream_failures(run: DbtRun, uid: str, failed: set[str]) -> set[str]:
    """Failed ancestors of a skipped node (why dbt skipped it)."""
    found: set[str] = set()
    seen = {uid}
    todo = list(run.parents.get(uid, ()))
    while todo:
        parent = todo.pop()
        if parent in seen:
            continue
        seen.add(parent)
        if parent in failed:
            found.add(parent)
        else:
            todo.extend(run.parents.get(parent, ()))
    return found


def _tally(nodes: Sequence[NodeResult]) -> tuple[int, int, int, int]:
    ok = sum(n.status in OK_STATUSES for n in nodes)
    failed = sum(n.status in FAILED_STATUSES for n in nodes)
    skipped = sum(n.status in SKIPPED_STATUSES for n in nodes)
    warned = sum(n.status == "warn" for n in nodes)
    return ok, failed, skipped, warned


def _stage_record(
    stage: Stage,
    nodes: list[NodeResult],
    model_tests: list[NodeResult],
    run: DbtRun,
    failed_ids: set[str],
    names: dict[str, str],
    test_stage: str,
) -> StageRecord:
    models = [n for n in nodes if n.resource_type == "model"]
    tests = [n for n in nodes if n.resource_type in TEST_TYPES]
    failed = [n for n in nodes if n.status in FAILED_STATUSES]
    skipped = [n for n in nodes if n.status in SKIPPED_STATUSES]
    known = OK_STATUSES | FAILED_STATUSES | SKIPPED_STATUSES
    unknown = [n for n in nodes if n.status not in known]
    if failed:
        status = "Failed"
    elif skipped or unknown:
        status = "In Progress"
    else:
        status = "Done"

    lines: list[str] = []
    if models or stage.models:
        ok, nf, ns, _ = _tally(models)
        total = sum(run.models_per_folder.get(f, 0) for f in stage.models)
        folders = ", ".join(f"models/{f}" for f in stage.models)
        lines.append(
            f"models: {ok} passed, {nf} failed, {ns} skipped "
            f"({len(models)} of {total} in {folders or 'the stage'} ran)"
        )
    if tests or stage.tests:
        ok, nf, ns, nw = _tally(tests)
        warn = f" ({nw} with warnings)" if nw else ""
        lines.append(
            f"tests: {ok} passed{warn}, {nf} failed, {ns} skipped "
            f"({len(tests)} of {run.tests_total} in the project ran)"
        )
    built = [n for n in models if n.status not in SKIPPED_STATUSES]
    if built:
        slow = max(built, key=lambda n: n.execution_time)
        lines.append(f"slowest model: {slow.name} ({slow.execution_time:.1f} s)")
    ran_tests = [n for n in tests if n.status not in SKIPPED_STATUSES]
    if ran_tests and not models:
        slow = max(ran_tests, key=lambda n: n.execution_time)
        lines.append(f"slowest test: {slow.name} ({slow.execution_time:.1f} s)")
    if model_tests:
        ok, nf, ns, _ = _tally(model_tests)
        where = f"; they set the status of {test_stage}" if test_stage else ""
        lines.append(f"tests on these models: {ok} passed, {nf} failed, {ns} skipped{where}")
    for n in failed[:MAX_LISTED_NODES]:
        what = "failed" if n.status == "fail" else n.status
        lines.append(f"{what}: {n.name}: {first_line(n.message) or 'no message'}")
    if len(failed) > MAX_LISTED_NODES:
        lines.append(f"... and {len(failed) - MAX_LISTED_NODES} more failed")
    if skipped:
        causes: set[str] = set()
        for n in skipped:
            causes |= _upstream_failures(run, n.unique_id, failed_ids)
        because = ""
        if causes:
            because = "; upstream failed: " + _listed(sorted(names.get(c, c) for c in causes))
        lines.append(f"skipped: {_listed([n.name for n in skipped])}{because}")
    for n in unknown[:MAX_LISTED_NODES]:
        lines.append(f"unknown dbt status '{n.status}': {n.name}")
    when = run.generated_at.strftime("%Y-%m-%d %H:%M UTC") if run.generated_at else "unknown time"
    lines.append(f"from dbt {run.command or 'run'} at {when}")

    completion = None
    if status in ("Done", "Failed"):
        ends = [n.completed for n in nodes if n.completed]
        last = max(ends) if ends else run.generated_at
        completion = last.astimezone(dt.timezone.utc).date().isoformat() if last else None
    rows = [n.rows for n in models if n.rows is not None]
    return StageRecord(
        stage=stage,
        status=status,
        duration_h=_hours(nodes),
        completion_date=completion,
        rows=sum(rows) if rows else None,
        notes="\n".join(lines),
        invocation_id=run.invocation_id or None,
    )


@dataclass
class Plan:
    """The records of one sync, plus what the run held that no stage claims."""

    records: list[StageRecord]
    unmapped: Counter  # "models/<folder>" or resource type -> count of results
    unknown_folders: list[str]  # folders in the stage map with no model in the manifest


def build_records(stages: Sequence[Stage], run: DbtRun) -> Plan:
    """Group the run's results into stages and compute each stage's record."""
    by_folder = {f: s.code for s in stages for f in s.models}
    test_stage = next((s.code for s in stages if s.tests), "")
    grouped: dict[str, list[NodeResult]] = {s.code: [] for s in stages}
    model_tests: dict[str, list[NodeResult]] = {s.code: [] for s in stages}
    unmapped: Counter = Counter()
    for n in run.results:
        if n.resource_type == "model" and n.folder in by_folder:
            code = by_folder[n.folder]
        elif n.resource_type in TEST_TYPES and test_stage:
            code = test_stage
        else:
            unmapped[f"models/{n.folder}" if n.folder else n.resource_type] += 1
            continue
        grouped[code].append(n)
    # Tests also count, for information only, in the Notes of the stages of their models.
    for n in run.results:
        if n.resource_type not in TEST_TYPES:
            continue
        codes = {by_folder.get(run.model_folders.get(m, ""), "") for m in n.tested_models}
        for code in sorted(c for c in codes if c):
            model_tests[code].append(n)
    failed_ids = {n.unique_id for n in run.results if n.status in FAILED_STATUSES}
    names = {n.unique_id: n.name for n in run.results}
    records = []
    for s in stages:
        if grouped[s.code]:
            records.append(
                _stage_record(
                    s, grouped[s.code], model_tests[s.code], run, failed_ids, names, test_stage
                )
            )
        else:
            records.append(StageRecord(stage=s, status="Todo", from_run=False))
    unknown = sorted(f for s in stages for f in s.models if not run.models_per_folder.get(f))
    return Plan(records=records, unmapped=unmapped, unknown_folders=unknown)


# --- AirTable access -----------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Where to write. ``token`` is kept out of repr() so it can never be printed."""

    token: str = field(repr=False)
    base_id: str
    table: str
    endpoint: str


def _clean_endpoint(value: str) -> str:
    url = value.strip().rstrip("/")
    if url.endswith("/v0"):
        url = url[: -len("/v0")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BqxError(
            f"AIRTABLE_ENDPOINT_URL={_display_url(value)} is not an http(s) URL: "
            f"use the API root, e.g. {DEFAULT_ENDPOINT}"
        )
    return url


def _display_url(url: str) -> str:
    """A URL without any user:password part."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def settings_from_env(*, require_credentials: bool = True) -> Settings:
    """Read ``AIRTABLE_*`` from the environment; raise a BqxError naming what is missing."""
    token = os.environ.get("AIRTABLE_API_KEY", "").strip()
    base_id = os.environ.get("AIRTABLE_BASE_ID", "").strip()
    table = os.environ.get("AIRTABLE_TABLE", "").strip() or DEFAULT_TABLE
    endpoint = _clean_endpoint(os.environ.get("AIRTABLE_ENDPOINT_URL", "") or DEFAULT_ENDPOINT)
    if require_credentials:
        if not token:
            raise BqxError(
                "AIRTABLE_API_KEY is not set: export an AirTable personal access token with "
                "the data.records:read and data.records:write scopes (or use --dry-run)"
            )
        if not base_id:
            raise BqxError(
                "AIRTABLE_BASE_ID is not set: export the id of the base holding the "
                f"'{table}' table (it starts with 'app'; see the base's URL)"
            )
    return Settings(token=token, base_id=base_id, table=table, endpoint=endpoint)


class RateLimiter:
    """At most ``per_second`` requests in any ``window`` seconds, one at a time.

    A request may start only when the ``per_second``-th latest request *finished* more
    than ``window`` seconds ago, so the server, which counts arrivals, never sees more
    than ``per_second`` in a window. Use as a context manager around each request.
    """

    def __init__(self, per_second: int = REQUESTS_PER_SECOND, window: float = RATE_WINDOW_S):
        self.per_second = per_second
        self.window = window
        self._finished: deque[float] = deque(maxlen=per_second)
        self._lock = threading.Lock()

    def __enter__(self) -> RateLimiter:
        self._lock.acquire()
        if len(self._finished) == self.per_second:
            wait = self._finished[0] + self.window + 0.01 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        return self

    def __exit__(self, *exc: object) -> None:
        self._finished.append(time.monotonic())
        self._lock.release()


_LIMITERS: dict[tuple[str, str], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(endpoint: str, base_id: str) -> RateLimiter:
    """The process-wide limiter of one base (AirTable's limit is per base)."""
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault((endpoint, base_id), RateLimiter())


def _open_table(settings: Settings) -> Table:
    """A pyairtable Table whose session retries 429 with backoff and keeps the rate."""
    from pyairtable import Api, retry_strategy
    from requests.adapters import HTTPAdapter

    retry = retry_strategy(
        total=RETRY_TOTAL, backoff_factor=RETRY_BACKOFF, connect=1, read=0, other=0
    )

    class ThrottledAdapter(HTTPAdapter):
        def __init__(self, limiter: RateLimiter) -> None:
            super().__init__(max_retries=retry)
            self.limiter = limiter

        def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
            with self.limiter:
                return super().send(request, *args, **kwargs)

    api = Api(
        settings.token,
        endpoint_url=settings.endpoint,
        retry_strategy=retry,
        timeout=TIMEOUT_S,
    )
    adapter = ThrottledAdapter(limiter_for(settings.endpoint, settings.base_id))
    api.session.mount("https://", adapter)
    api.session.mount("http://", adapter)
    return api.table(settings.base_id, settings.table)


def _redact(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _error_body(response: Any) -> tuple[str, str]:
    """(type, message) of an AirTable error body, whichever of its shapes it has."""
    try:
        body = response.json()
    except ValueError:
        return "", (response.text or "")[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    err = body.get("error")
    if isinstance(err, dict):
        return str(err.get("type") or ""), str(err.get("message") or "")
    if isinstance(err, str):
        return err, str(body.get("message") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("error") or ""), str(errors[0].get("message") or "")
    return "", json.dumps(body)[:200]


def _quoted_name(message: str) -> str:
    """The name inside quotes in an AirTable message (``"X"`` or ``""X""``)."""
    m = re.search(r'"+([^"]+)"+', message)
    return m.group(1) if m else ""


def _describe_http_error(
    status: int, response: Any, settings: Settings, sent: Sequence[dict[str, Any]]
) -> str:
    etype, emsg = _error_body(response)
    where = f"table '{settings.table}' of base {settings.base_id}"
    if status == 401:
        return (
            "AirTable rejected the token (401 Unauthorized): check AIRTABLE_API_KEY "
            "(a personal access token that is valid and not expired)"
        )
    if status == 403:
        return (
            f"AirTable refused access to {where} (403 {etype or 'Forbidden'}): give the token "
            "in AIRTABLE_API_KEY the data.records:read and data.records:write scopes and "
            f"access to base {settings.base_id}, and check AIRTABLE_BASE_ID and AIRTABLE_TABLE"
        )
    if status == 404:
        return (
            f"AirTable found no {where} (404 {etype or 'Not Found'}): check AIRTABLE_BASE_ID "
            "(it starts with 'app') and AIRTABLE_TABLE (default Stages)"
        )
    if status == 422:
        name = _quoted_name(emsg)
        if etype == "UNKNOWN_FIELD_NAME" and name:
            kind = FIELD_TYPES.get(name)
            fix = f'add a field "{name}" ({kind}) to it' if kind else "fix the name"
            return f'AirTable {where} has no field "{name}" (422 UNKNOWN_FIELD_NAME): {fix}'
        if etype in ("INVALID_MULTIPLE_CHOICE_OPTIONS", "INVALID_SELECT_OPTION") and name:
            fields = sorted({k for rec in sent for k, v in rec.items() if v == name}) or ["Status"]
            return (
                f'the {"/".join(fields)} field of AirTable {where} has no select option "{name}" '
                f"(422 {etype}): add the options {', '.join(STATUSES)}"
            )
        if etype == "INVALID_VALUE_FOR_COLUMN" and name:
            kind = FIELD_TYPES.get(name, "the type in docs/airtable.md")
            return (
                f'AirTable field "{name}" of {where} cannot take the value bqx sends '
                f"(422 INVALID_VALUE_FOR_COLUMN): make it a {kind} field"
            )
        return f"AirTable rejected the request to {where} (422 {etype}): {emsg}"
    if status == 429:
        return f"AirTable rate limit on base {settings.base_id} (429): wait a minute and run again"
    return f"AirTable answered HTTP {status} for {where}: {etype} {emsg}".strip()


@contextmanager
def _airtable_errors(settings: Settings, sent: Sequence[dict[str, Any]] = ()) -> Iterator[None]:
    """Turn request failures into one BqxError; the token never reaches the message."""
    import requests

    message = None
    try:
        yield
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        message = _describe_http_error(status, exc.response, settings, sent)
    except requests.exceptions.RetryError:
        message = (
            f"AirTable kept answering 429 (too many requests) for base {settings.base_id} after "
            f"{RETRY_TOTAL} retries: another client may be using the base's 5 requests/s; "
            "wait a minute and run again"
        )
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        kind = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "failed"
        message = (
            f"connection to AirTable at {_display_url(settings.endpoint)} {kind}: check the "
            "network and AIRTABLE_ENDPOINT_URL"
        )
    except requests.exceptions.RequestException as exc:
        message = f"request to AirTable failed: {type(exc).__name__}"
    if message is not None:
        raise BqxError(_redact(message, settings.token)) from None


def _existing_codes(table: Table, settings: Settings, codes: Sequence[str]) -> set[str]:
    """Which of ``codes`` already have a record (one filtered, paged list request)."""
    from pyairtable.formulas import EQ, OR, Field

    if not codes:
        return set()
    formula = OR(*[EQ(Field(KEY_FIELD), c) for c in codes])
    with _airtable_errors(settings):
        records = table.all(formula=formula, fields=[KEY_FIELD])
    return {str(r.get("fields", {}).get(KEY_FIELD)) for r in records}


def _upsert(
    table: Table, settings: Settings, rows: Sequence[dict[str, Any]]
) -> tuple[set[str], set[str]]:
    """Batch upsert on Stage Code (pyairtable sends 10 records a request). Returns the
    codes created and updated."""
    if not rows:
        return set(), set()
    with _airtable_errors(settings, rows):
        result = table.batch_upsert([{"fields": r} for r in rows], key_fields=[KEY_FIELD])
    code_of = {r["id"]: str(r.get("fields", {}).get(KEY_FIELD)) for r in result["records"]}
    created = {code_of.get(i, i) for i in result["createdRecords"]}
    updated = {code_of.get(i, i) for i in result["updatedRecords"]}
    return created, updated


# --- output --------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def format_table(records: Sequence[StageRecord]) -> str:
    """The records as a fixed-width table; Notes lines continue under their stage."""
    heads = [
        "Stage Code",
        "Stage ID",
        "Status",
        "Actual Duration (h)",
        "Completion Date",
        "Rows",
        "Invocation ID",
        "Notes",
    ]
    rows: list[list[str]] = []
    for rec in records:
        f = rec.fields()
        status = f["Status"] if rec.from_run else "Todo (only if new)"
        notes = (f.get("Notes") or "").splitlines() or [""]
        cells = [
            f["Stage Code"],
            f["Stage ID"],
            status,
            _cell(f.get("Actual Duration")),
            _cell(f.get("Completion Date")),
            _cell(f.get("Rows")),
            _cell(f.get("Invocation ID")),
            notes[0],
        ]
        rows.append(cells)
        rows.extend([""] * (len(heads) - 1) + [line] for line in notes[1:])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    widths[-1] = len(heads[-1])  # the last column is not padded

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(heads), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


# --- tasks ---------------------------------------------------------------------------


@dataclass
class SyncResult:
    records: list[StageRecord]
    created: set[str] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)
    left_alone: set[str] = field(default_factory=set)  # Todo stages that already had a record
    dry_run: bool = False


def sync(
    run_results: str | Path | None = None,
    *,
    dry_run: bool = False,
    stage_map: str | Path | None = None,
) -> SyncResult:
    """Upsert one record per stage from a dbt run (see the module docstring)."""
    stages = load_stage_map(stage_map)
    run = load_run(run_results)
    plan = build_records(stages, run)
    for warning in run.warnings:
        print(f"bqx: warning: {warning}", file=sys.stderr)
    for folder in plan.unknown_folders:
        print(
            f"bqx: warning: stage map folder '{folder}' matches no model in the manifest",
            file=sys.stderr,
        )
    settings = settings_from_env(require_credentials=not dry_run)
    reported = [r for r in plan.records if r.from_run]
    todo = [r for r in plan.records if not r.from_run]
    source = f"dbt {run.command or 'run'} {run.invocation_id}".rstrip()
    if plan.unmapped:
        parts = ", ".join(f"{k} ({v})" for k, v in sorted(plan.unmapped.items()))
        print(f"not in any stage: {parts}")
    if not reported:
        print(f"{source}: no result belongs to a stage in the stage map")
    if dry_run:
        where = (
            f"table '{settings.table}' of base {settings.base_id}"
            if settings.base_id
            else f"table '{settings.table}' (AIRTABLE_BASE_ID unset)"
        )
        print(
            f"dry run: {len(plan.records)} record(s) for {where}, upserted on {KEY_FIELD}; "
            f"nothing sent"
        )
        print(format_table(plan.records))
        return SyncResult(records=plan.records, dry_run=True)

    table = _open_table(settings)
    existing = _existing_codes(table, settings, [r.stage.code for r in todo])
    to_send = reported + [r for r in todo if r.stage.code not in existing]
    created, updated = _upsert(table, settings, [r.fields() for r in to_send])
    left = {r.stage.code for r in todo if r.stage.code in existing}
    print(
        f"AirTable table '{settings.table}' of base {settings.base_id} from {source}: "
        f"{len(created)} created, {len(updated)} updated, {len(left)} left as they were"
    )
    for rec in plan.records:
        code = rec.stage.code
        action = "created" if code in created else "updated" if code in updated else "unchanged"
        status = rec.status if rec.from_run else "Todo" if code in created else "(kept)"
        print(f"  {code:<10} {rec.stage.id:<18} {status:<12} {action}")
    return SyncResult(records=plan.records, created=created, updated=updated, left_alone=left)


def report_stage(
    code: str,
    status: str,
    rows: int | None = None,
    duration_s: float | None = None,
    notes: str = "",
    *,
    invocation_id: str | None = None,
    stage_map: str | Path | None = None,
) -> bool:
    """Upsert one stage record from a bqx command (``bqx export`` reports BQX-2.7).

    Without ``AIRTABLE_API_KEY`` this prints one line to stderr and returns False (a
    no-op). Otherwise it writes Stage Code/ID (from the stage map), Status, Rows,
    Actual Duration (``duration_s`` in hours), Notes, Completion Date (today, UTC, when
    Done or Failed) and Invocation ID (``invocation_id`` or a new UUID) and returns True.
    Raises BqxError on a bad status, a code missing from the stage map or an AirTable
    failure (the caller may catch it so its own work still succeeds).
    """
    if not os.environ.get("AIRTABLE_API_KEY", "").strip():
        print(
            f"bqx: AIRTABLE_API_KEY is not set; stage {code} not reported to AirTable",
            file=sys.stderr,
        )
        return False
    if status not in STATUSES:
        raise BqxError(f"stage status '{status}' is not one of {', '.join(STATUSES)}")
    stages = {s.code: s for s in load_stage_map(stage_map)}
    if code not in stages:
        raise BqxError(
            f"stage {code} is not in the stage map {stage_map or stage_map_path()}; "
            f"known stages: {', '.join(stages)}"
        )
    settings = settings_from_env()
    done = status in ("Done", "Failed")
    record = {
        "Stage Code": code,
        "Stage ID": stages[code].id,
        "Status": status,
        "Actual Duration": round(duration_s / 3600.0, 6) if duration_s is not None else None,
        "Completion Date": dt.datetime.now(dt.timezone.utc).date().isoformat() if done else None,
        "Rows": int(rows) if rows is not None else None,
        "Notes": notes or "",
        "Invocation ID": invocation_id or str(uuid.uuid4()),
    }
    created, _ = _upsert(_open_table(settings), settings, [record])
    action = "created" if code in created else "updated"
    print(f"bqx: AirTable stage {code} {status} ({action})", file=sys.stderr)
    return True


# --- CLI -----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "airtable",
        help="report pipeline stages to AirTable",
        description="Report dbt pipeline stages to an AirTable table (docs/airtable.md). "
        "Needs AIRTABLE_API_KEY and AIRTABLE_BASE_ID; AIRTABLE_TABLE (default Stages) "
        "and AIRTABLE_ENDPOINT_URL are optional.",
    )
    actions = parser.add_subparsers(dest="airtable_action", metavar="ACTION", required=True)
    sync_p = actions.add_parser(
        "sync",
        help="upsert one record per stage from dbt's run_results.json",
        description="Read dbt's run_results.json and the manifest.json beside it, group the "
        "results into the stages of airtable_stages.yml and upsert one record per stage "
        "(keyed on Stage Code; records are created when missing, never deleted).",
    )
    sync_p.add_argument(
        "--run-results",
        metavar="PATH",
        type=Path,
        help="dbt's run_results.json (default: target/run_results.json in the project)",
    )
    sync_p.add_argument(
        "--stage-map",
        metavar="PATH",
        type=Path,
        help=f"the stage map (default: {STAGE_MAP_FILE} in the project)",
    )
    sync_p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the records that would be sent, as a table; sends nothing, needs no token",
    )
    sync_p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sync(args.run_results, dry_run=args.dry_run, stage_map=args.stage_map)
    return 0
