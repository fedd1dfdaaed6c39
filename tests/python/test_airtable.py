"""``bqx airtable sync`` and ``report_stage`` against a local fake of the AirTable API.

The dbt artifacts are synthesised here (a ``dbt build`` of the whole project, as
``bqx demo`` runs it, or parts of one), so the tests need neither dbt nor a database.
The fake (tests/python/fake_airtable.py) enforces AirTable's limits, so breaking one
fails here as it would against the real service.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fake_airtable import STAGES_SCHEMA, FakeAirtable

from py_tasks import airtable, cli, config
from py_tasks.dbtcmd import first_line
from py_tasks.errors import BqxError

PROJECT = Path(__file__).resolve().parents[2]
TOKEN = "patTESTsecret0123456789.abcdefSECRET"
BASE = "appFakeBase000001"
PKG = "bqx_warehouse"
FAMILIES = ("bqx", "reg_rate", "reg_bqx", "correlation_bqx")
START = dt.datetime(2024, 7, 1, 23, 59, 40, tzinfo=dt.timezone.utc)  # crosses midnight


# --- synthetic dbt artifacts ---------------------------------------------------------


def _model(name: str, folder: str, deps: list[str]) -> dict[str, Any]:
    return {
        "resource_type": "model",
        "name": name,
        "package_name": PKG,
        "fqn": [PKG, folder, name],
        "original_file_path": f"models/{folder}/{name}.sql",
        "depends_on": {"nodes": deps},
    }


def make_manifest(invocation_id: str) -> dict[str, Any]:
    """The project as dbt parses it: seed, staging, 4 per-pair families, tests."""
    nodes: dict[str, Any] = {
        f"seed.{PKG}.currency_pairs": {
            "resource_type": "seed",
            "name": "currency_pairs",
            "fqn": [PKG, "currency_pairs"],
            "depends_on": {"nodes": []},
        }
    }
    stg = f"model.{PKG}.stg_m1_bars"
    base = f"model.{PKG}.baseline_rates"
    rate = f"model.{PKG}.rate_index"
    nodes[stg] = _model("stg_m1_bars", "staging", [])
    nodes[base] = _model("baseline_rates", "staging", [stg])
    nodes[rate] = _model("rate_index", "staging", [stg, base])
    unit_tests: dict[str, Any] = {}
    for pair in config.all_pairs():
        bqx = f"model.{PKG}.bqx_{pair}"
        reg_bqx = f"model.{PKG}.reg_bqx_{pair}"
        nodes[bqx] = _model(f"bqx_{pair}", "bqx", [rate])
        nodes[f"model.{PKG}.reg_rate_{pair}"] = _model(f"reg_rate_{pair}", "reg_rate", [rate])
        nodes[reg_bqx] = _model(f"reg_bqx_{pair}", "reg_bqx", [bqx])
        nodes[f"model.{PKG}.correlation_bqx_{pair}"] = _model(
            f"correlation_bqx_{pair}", "correlation_bqx", [reg_bqx, bqx]
        )
        for family in FAMILIES:
            model = f"model.{PKG}.{family}_{pair}"
            for kind in ("unique", "not_null"):
                name = f"{kind}_{family}_{pair}_ts_utc"
                nodes[f"test.{PKG}.{name}.0a1b2c3d4e"] = {
                    "resource_type": "test",
                    "name": name,
                    "fqn": [PKG, family, name],
                    "attached_node": model,
                    "depends_on": {"nodes": [model]},
                }
    nodes[f"test.{PKG}.assert_reg_terms_sum.5f6e7d"] = {
        "resource_type": "test",
        "name": "assert_reg_terms_sum",
        "fqn": [PKG, "assert_reg_terms_sum"],
        "attached_node": None,
        "depends_on": {"nodes": [f"model.{PKG}.reg_bqx_eurusd"]},
    }
    unit_tests[f"unit_test.{PKG}.reg_bqx_eurusd.test_quadratic_fit"] = {
        "resource_type": "unit_test",
        "name": "test_quadratic_fit",
        "package_name": PKG,
        "model": "reg_bqx_eurusd",
        "depends_on": {"nodes": [f"model.{PKG}.reg_bqx_eurusd"]},
    }
    return {
        "metadata": {"invocation_id": invocation_id, "dbt_version": "1.11.0"},
        "nodes": nodes,
        "unit_tests": unit_tests,
        "sources": {},
    }


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_artifacts(
    target: Path,
    *,
    which: str = "build",
    invocation_id: str = "11111111-1111-4111-8111-111111111111",
    outcome: dict[str, tuple[str, str]] | None = None,
    only: tuple[str, ...] = ("seed", "model", "test", "unit_test"),
    step_s: float = 0.5,
) -> Path:
    """run_results.json + manifest.json of a run of every node of the types ``only``,
    in dependency order, one after another, each ``step_s`` long. ``outcome`` maps a
    node name (or unique_id) to (status, message); everything else succeeds."""
    outcome = outcome or {}
    manifest = make_manifest(invocation_id)
    all_nodes = {**manifest["nodes"], **manifest["unit_tests"]}
    order = {"seed": 0, "model": 1, "test": 2, "unit_test": 3}
    folder_order = {"staging": 0, "bqx": 1, "reg_rate": 2, "reg_bqx": 3, "correlation_bqx": 4}

    def key(item: tuple[str, dict[str, Any]]) -> tuple[int, int]:
        uid, node = item
        fqn = node.get("fqn") or []
        return order[node["resource_type"]], folder_order.get(fqn[1] if len(fqn) > 2 else "", 9)

    results = []
    t = START
    for uid, node in sorted(all_nodes.items(), key=key):
        rtype = node["resource_type"]
        if rtype not in only:
            continue
        status, message = outcome.get(uid) or outcome.get(node["name"]) or ("", "")
        if not status:
            status = "success" if rtype in ("model", "seed") else "pass"
            message = "SELECT 1000" if rtype == "model" else "OK" if rtype == "seed" else None
        timing = []
        execution_time = 0.0
        if status != "skipped":
            end = t + dt.timedelta(seconds=step_s)
            timing = [
                {"name": "compile", "started_at": _iso(t), "completed_at": _iso(t)},
                {"name": "execute", "started_at": _iso(t), "completed_at": _iso(end)},
            ]
            execution_time = step_s
            t = end
        folder = (node.get("fqn") or ["", ""])[1]
        rows = -1 if folder == "staging" else 1000
        if node["name"] == "reg_bqx_eurusd":
            execution_time = step_s * 0.9  # not the slowest
        if node["name"] == "reg_bqx_usdjpy" and status == "success":
            execution_time = step_s * 1.5  # the slowest of reg_bqx (overlaps the next)
        results.append(
            {
                "unique_id": uid,
                "status": status,
                "execution_time": execution_time,
                "timing": timing,
                "thread_id": "Thread-1",
                "adapter_response": (
                    {"_message": f"SELECT {rows}", "code": "SELECT", "rows_affected": rows}
                    if rtype == "model" and status == "success"
                    else {}
                ),
                "message": message,
                "failures": 2
                if status == "fail"
                else 0
                if rtype in ("test", "unit_test")
                else None,
                "relation_name": None,
            }
        )
    run_results = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.11.0",
            "generated_at": _iso(t),
            "invocation_id": invocation_id,
        },
        "results": results,
        "elapsed_time": (t - START).total_seconds(),
        "args": {"which": which},
    }
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps(manifest))
    path = target / "run_results.json"
    path.write_text(json.dumps(run_results))
    return path


def _failed_run_outcome() -> dict[str, tuple[str, str]]:
    """reg_bqx_gbpusd errors; correlation_bqx_gbpusd (downstream) is skipped; one test
    of reg_rate fails."""
    return {
        "reg_bqx_gbpusd": (
            "error",
            "Database Error in model reg_bqx_gbpusd (models/reg_bqx/reg_bqx_gbpusd.sql)\n"
            "  division by zero\n  compiled code at target/run/bqx_warehouse/...",
        ),
        "correlation_bqx_gbpusd": ("skipped", "SKIP"),
        "unique_correlation_bqx_gbpusd_ts_utc": ("skipped", "SKIP"),
        "not_null_correlation_bqx_gbpusd_ts_utc": ("skipped", "SKIP"),
        "unique_reg_bqx_gbpusd_ts_utc": ("skipped", "SKIP"),
        "not_null_reg_bqx_gbpusd_ts_utc": ("skipped", "SKIP"),
        "unique_reg_rate_eurusd_ts_utc": ("fail", "Got 2 results, configured to fail if != 0"),
    }


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BQX_PROJECT_DIR", str(PROJECT))
    for name in ("AIRTABLE_API_KEY", "AIRTABLE_BASE_ID", "AIRTABLE_TABLE", "AIRTABLE_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def _start(**kwargs: Any) -> FakeAirtable:
    return FakeAirtable(TOKEN, BASE, **kwargs).start()


@pytest.fixture()
def fake() -> Iterator[FakeAirtable]:
    server = _start()
    try:
        yield server
    finally:
        server.stop()


def _point_at(monkeypatch: pytest.MonkeyPatch, server: FakeAirtable, token: str = TOKEN) -> None:
    monkeypatch.setenv("AIRTABLE_API_KEY", token)
    monkeypatch.setenv("AIRTABLE_BASE_ID", BASE)
    monkeypatch.setenv("AIRTABLE_ENDPOINT_URL", server.url)


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, fake: FakeAirtable) -> FakeAirtable:
    _point_at(monkeypatch, fake)
    return fake


def _no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
        assert TOKEN[:12] not in text


# --- stage map -----------------------------------------------------------------------


def test_default_stage_map_follows_the_plan() -> None:
    stages = {s.code: s for s in airtable.load_stage_map()}
    assert list(stages) == ["BQX-2.11", "BQX-2.12", "BQX-2.14", "BQX-2.15", "BQX-2.7"]
    assert stages["BQX-2.11"].models == ("reg_rate",)
    assert stages["BQX-2.12"].models == ("reg_bqx",)
    assert stages["BQX-2.14"].models == ("correlation_bqx",)
    assert stages["BQX-2.15"].tests and not stages["BQX-2.15"].models
    assert stages["BQX-2.7"].reported_by == "bqx export" and not stages["BQX-2.7"].models


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stages: []", "non-empty list"),
        ("stages: [{code: A, id: a}, {code: A, id: b}]", "appears twice"),
        ("stages: [{code: A, id: a, modles: [x]}]", "unknown key(s) modles"),
        ("stages: [{code: A}]", "'id'"),
        ("stages: [{code: A, id: a, models: [x]}, {code: B, id: b, models: [x]}]", "already"),
        ("stages: [{code: A, id: a, tests: all}, {code: B, id: b, tests: all}]", "tests already"),
        ("stages: [{code: A, id: a, tests: some}]", "'tests' is 'all'"),
        ("stages: [unclosed", "not valid YAML"),
    ],
)
def test_stage_map_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "stages.yml"
    path.write_text(text)
    with pytest.raises(BqxError, match=None) as info:
        airtable.load_stage_map(path)
    assert expected in info.value.message


def test_missing_stage_map(tmp_path: Path) -> None:
    with pytest.raises(BqxError, match="not found"):
        airtable.load_stage_map(tmp_path / "nope.yml")


# --- records from a run --------------------------------------------------------------


def _plan(path: Path) -> dict[str, airtable.StageRecord]:
    plan = airtable.build_records(airtable.load_stage_map(), airtable.load_run(path))
    return {r.stage.code: r for r in plan.records}


def test_full_build_makes_done_stages(tmp_path: Path) -> None:
    path = write_artifacts(tmp_path / "target")
    run = airtable.load_run(path)
    plan = airtable.build_records(airtable.load_stage_map(), run)
    recs = {r.stage.code: r for r in plan.records}
    assert {c: r.status for c, r in recs.items()} == {
        "BQX-2.11": "Done",
        "BQX-2.12": "Done",
        "BQX-2.14": "Done",
        "BQX-2.15": "Done",
        "BQX-2.7": "Todo",
    }
    reg_bqx = recs["BQX-2.12"]
    assert reg_bqx.rows == 28 * 1000
    # wall span: 28 consecutive models of 0.5 s each
    assert reg_bqx.duration_h == pytest.approx(28 * 0.5 / 3600, abs=1e-6)
    assert reg_bqx.completion_date == "2024-07-02"  # UTC date of the last completed_at
    assert reg_bqx.invocation_id == "11111111-1111-4111-8111-111111111111"
    assert "models: 28 passed, 0 failed, 0 skipped (28 of 28 in models/reg_bqx ran)" in (
        reg_bqx.notes
    )
    assert "slowest model: reg_bqx_usdjpy (0.8 s)" in reg_bqx.notes
    assert "tests on these models: 58 passed, 0 failed, 0 skipped" in reg_bqx.notes
    tests = recs["BQX-2.15"]
    assert tests.rows is None
    assert "tests: 226 passed, 0 failed, 0 skipped (226 of 226 in the project ran)" in tests.notes
    assert not recs["BQX-2.7"].from_run
    assert recs["BQX-2.7"].fields() == {
        "Stage Code": "BQX-2.7",
        "Stage ID": "export",
        "Status": "Todo",
    }
    assert plan.unmapped == {"models/staging": 3, "models/bqx": 28, "seed": 1}
    assert plan.unknown_folders == []
    fields = reg_bqx.fields()
    assert set(fields) == set(airtable.FIELDS)


def test_failed_run_marks_stages(tmp_path: Path) -> None:
    recs = _plan(write_artifacts(tmp_path / "target", outcome=_failed_run_outcome()))
    reg_bqx = recs["BQX-2.12"]
    assert reg_bqx.status == "Failed"
    assert (
        "error: reg_bqx_gbpusd: Database Error in model reg_bqx_gbpusd "
        "(models/reg_bqx/reg_bqx_gbpusd.sql): division by zero"
    ) in reg_bqx.notes
    assert "models: 27 passed, 1 failed, 0 skipped" in reg_bqx.notes
    assert reg_bqx.rows == 27 * 1000
    assert reg_bqx.completion_date == "2024-07-02"
    # downstream of the failure: skipped, so not finished
    corr = recs["BQX-2.14"]
    assert corr.status == "In Progress"
    assert "skipped: correlation_bqx_gbpusd; upstream failed: reg_bqx_gbpusd" in corr.notes
    assert corr.completion_date is None
    # a failing test fails the validation stage, not the model stage
    assert recs["BQX-2.15"].status == "Failed"
    assert (
        "failed: unique_reg_rate_eurusd_ts_utc: Got 2 results, configured to fail if != 0"
        in recs["BQX-2.15"].notes
    )
    assert recs["BQX-2.11"].status == "Done"
    assert "tests on these models: 55 passed, 1 failed, 0 skipped" in recs["BQX-2.11"].notes


def test_test_only_run_leaves_model_stages_alone(tmp_path: Path) -> None:
    recs = _plan(write_artifacts(tmp_path / "target", which="test", only=("test", "unit_test")))
    assert recs["BQX-2.15"].status == "Done" and recs["BQX-2.15"].from_run
    assert "slowest test:" in recs["BQX-2.15"].notes
    for code in ("BQX-2.11", "BQX-2.12", "BQX-2.14", "BQX-2.7"):
        assert not recs[code].from_run


def test_partial_selection_is_noted(tmp_path: Path) -> None:
    path = write_artifacts(tmp_path / "target", only=("model",))
    data = json.loads(path.read_text())
    data["results"] = [r for r in data["results"] if r["unique_id"].endswith("reg_bqx_eurusd")]
    path.write_text(json.dumps(data))
    rec = _plan(path)["BQX-2.12"]
    assert rec.status == "Done"
    assert "(1 of 28 in models/reg_bqx ran)" in rec.notes


@pytest.mark.parametrize("which", ["compile", "generate", "show"])
def test_runs_that_build_nothing_are_refused(tmp_path: Path, which: str) -> None:
    with pytest.raises(BqxError, match=f"dbt {which}"):
        airtable.load_run(write_artifacts(tmp_path / "target", which=which))


def test_missing_artifacts(tmp_path: Path) -> None:
    with pytest.raises(BqxError, match="run_results.json not found"):
        airtable.load_run(tmp_path / "target" / "run_results.json")
    path = write_artifacts(tmp_path / "target")
    (tmp_path / "target" / "manifest.json").unlink()
    with pytest.raises(BqxError, match="manifest.json not found"):
        airtable.load_run(path)


def test_first_line_of_messages() -> None:
    assert first_line("Got 3 results\nmore") == "Got 3 results"
    assert first_line("Compilation Error in model x (m/x.sql)\n  bad ref\n") == (
        "Compilation Error in model x (m/x.sql): bad ref"
    )
    assert first_line("") == ""


# --- sync against the fake -----------------------------------------------------------


def test_sync_after_demo_creates_then_updates_in_place(
    env: FakeAirtable, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_artifacts(tmp_path / "target")
    result = airtable.sync(path)
    assert result.created == {"BQX-2.11", "BQX-2.12", "BQX-2.14", "BQX-2.15", "BQX-2.7"}
    first = env.by_key()
    assert {c: r["Status"] for c, r in first.items()} == {
        "BQX-2.11": "Done",
        "BQX-2.12": "Done",
        "BQX-2.14": "Done",
        "BQX-2.15": "Done",
        "BQX-2.7": "Todo",
    }
    row = first["BQX-2.12"]
    assert row["Stage ID"] == "reg_bqx"
    assert row["Rows"] == 28000
    assert row["Completion Date"] == "2024-07-02"
    assert row["Actual Duration"] == pytest.approx(14 / 3600, abs=1e-6)
    assert row["Invocation ID"] == "11111111-1111-4111-8111-111111111111"
    assert "slowest model: reg_bqx_usdjpy" in row["Notes"]

    # the next run: same records, updated in place
    second_id = "22222222-2222-4222-8222-222222222222"
    path = write_artifacts(tmp_path / "target", invocation_id=second_id)
    result = airtable.sync(path)
    assert result.created == set()
    assert result.updated == {"BQX-2.11", "BQX-2.12", "BQX-2.14", "BQX-2.15"}
    assert result.left_alone == {"BQX-2.7"}
    rows = env.rows()
    assert len(rows) == 5
    after = env.by_key()
    assert {c: r["id"] for c, r in after.items()} == {c: r["id"] for c, r in first.items()}
    assert after["BQX-2.12"]["Invocation ID"] == second_id
    assert after["BQX-2.7"]["Status"] == "Todo"
    # what went over the wire: no deletes, no batch above 10, no rate-limit hit
    assert all(e["method"] in ("GET", "POST", "PATCH") for e in env.log)
    assert all(e["records"] <= 10 for e in env.log)
    assert set(env.statuses()) == {200}
    out = capsys.readouterr()
    assert "0 created, 4 updated, 1 left as they were" in out.out
    _no_token(out.out, out.err)


def test_failed_run_sync_names_the_failing_node(env: FakeAirtable, tmp_path: Path) -> None:
    airtable.sync(write_artifacts(tmp_path / "target"))
    airtable.sync(write_artifacts(tmp_path / "target", outcome=_failed_run_outcome()))
    rows = env.by_key()
    assert len(env.rows()) == 5
    assert rows["BQX-2.12"]["Status"] == "Failed"
    assert "reg_bqx_gbpusd" in rows["BQX-2.12"]["Notes"]
    assert "division by zero" in rows["BQX-2.12"]["Notes"]
    assert rows["BQX-2.14"]["Status"] == "In Progress"
    assert "Completion Date" not in rows["BQX-2.14"]  # cleared: the stage is not complete
    assert rows["BQX-2.15"]["Status"] == "Failed"
    assert "unique_reg_rate_eurusd_ts_utc" in rows["BQX-2.15"]["Notes"]


def test_todo_never_overwrites_an_existing_status(env: FakeAirtable, tmp_path: Path) -> None:
    assert airtable.report_stage("BQX-2.7", "Done", rows=123, duration_s=36.0, notes="28 pairs")
    airtable.sync(write_artifacts(tmp_path / "target"))
    rows = env.by_key()
    assert rows["BQX-2.7"]["Status"] == "Done" and rows["BQX-2.7"]["Rows"] == 123
    # a later `dbt test` has no model results: the model stages keep their records
    airtable.sync(
        write_artifacts(
            tmp_path / "t2",
            which="test",
            only=("test", "unit_test"),
            invocation_id="33333333-3333-4333-8333-333333333333",
        )
    )
    after = env.by_key()
    assert len(env.rows()) == 5
    for code in ("BQX-2.11", "BQX-2.12", "BQX-2.14", "BQX-2.7"):
        assert after[code] == rows[code]
    assert after["BQX-2.15"]["Invocation ID"] == "33333333-3333-4333-8333-333333333333"


def test_existing_records_are_found_across_pages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = _start(max_page_size=2)
    try:
        _point_at(monkeypatch, server)
        path = write_artifacts(tmp_path / "target", which="seed", only=("seed",))
        airtable.sync(path)  # nothing for any stage: all five created as Todo
        assert len(server.rows()) == 5
        server.log.clear()
        result = airtable.sync(path)
        assert result.left_alone == {"BQX-2.11", "BQX-2.12", "BQX-2.14", "BQX-2.15", "BQX-2.7"}
        gets = [e for e in server.log if e["method"] == "GET"]
        assert len(gets) == 3 and "offset=itr2" in gets[1]["path"]
        assert "filterByFormula" in gets[0]["path"]
        assert not [e for e in server.log if e["method"] != "GET"]  # nothing to write
        assert len(server.rows()) == 5
    finally:
        server.stop()


def _big_stage_map(tmp_path: Path, n: int) -> Path:
    lines = ["stages:"]
    lines += [f"  - {{code: X-{i:03d}, id: stage{i}, reported_by: test}}" for i in range(n)]
    path = tmp_path / "big.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_client_keeps_to_10_records_and_5_requests_a_second(
    env: FakeAirtable, tmp_path: Path
) -> None:
    stage_map = _big_stage_map(tmp_path, 61)
    path = write_artifacts(tmp_path / "target", which="seed", only=("seed",))
    started = time.monotonic()
    result = airtable.sync(path, stage_map=stage_map)
    elapsed = time.monotonic() - started
    assert len(result.created) == 61 and len(env.rows()) == 61
    patches = [e for e in env.log if e["method"] == "PATCH"]
    assert [e["records"] for e in patches] == [10, 10, 10, 10, 10, 10, 1]
    assert len(env.log) == 8  # one list + seven upserts
    assert 429 not in env.statuses()  # the limiter waited instead
    assert elapsed >= 1.0


def test_fake_rejects_more_than_10_records_and_bursts() -> None:
    server = _start(window=30.0)  # a long window: the burst is caught however slow the host
    try:
        url = f"{server.url}/v0/{BASE}/Stages"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        body = {"records": [{"fields": {"Stage Code": f"S{i}"}} for i in range(11)]}
        r = requests.post(url, json=body, headers=headers, timeout=5)
        assert r.status_code == 422 and r.json()["error"]["type"] == "INVALID_RECORDS"
        codes = [requests.get(url, headers=headers, timeout=5).status_code for _ in range(6)]
        assert codes == [200] * 4 + [429] * 2  # 5 served (the POST and 4 GETs), then 429
        assert server.rows() == []
    finally:
        server.stop()


def test_429_is_retried_with_backoff(
    env: FakeAirtable, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_artifacts(tmp_path / "target")
    env.use_up_rate_limit()  # another client just spent the base's budget
    airtable.sync(path)
    statuses = env.statuses()
    assert statuses[0] == 429 and statuses[-1] == 200
    assert len(env.rows()) == 5
    _no_token(*capsys.readouterr())


def test_persistent_429_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(airtable, "RETRY_TOTAL", 2)
    monkeypatch.setattr(airtable, "RETRY_BACKOFF", 0.01)
    server = _start(rate_limit=0)
    try:
        _point_at(monkeypatch, server)
        with pytest.raises(BqxError, match="kept answering 429") as info:
            airtable.sync(write_artifacts(tmp_path / "target"))
        assert server.statuses() == [429, 429, 429]  # the request and two retries
        _no_token(info.value.message)
    finally:
        server.stop()


# --- errors --------------------------------------------------------------------------


def _sync_error(path: Path, capsys: pytest.CaptureFixture[str], caplog: Any) -> str:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BqxError) as info:
        airtable.sync(path)
    out = capsys.readouterr()
    _no_token(info.value.message, str(info.value), out.out, out.err, caplog.text)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    return info.value.message


def test_bad_token_401(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeAirtable,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "patWRONGtoken9876543210.zzzzSECRET"
    _point_at(monkeypatch, fake, token=wrong)
    caplog.set_level(logging.DEBUG)
    path = write_artifacts(tmp_path / "target")
    message = _sync_error(path, capsys, caplog)
    assert "401" in message and "AIRTABLE_API_KEY" in message
    assert wrong not in message and wrong not in caplog.text
    # through the command line: one line on stderr, exit 1, no token
    assert cli.main(["airtable", "sync", "--run-results", str(path)]) == 1
    out = capsys.readouterr()
    assert out.err.startswith("bqx: error: AirTable rejected the token (401")
    assert wrong not in out.out + out.err + caplog.text
    assert fake.rows() == []


def test_403_forbidden_base(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any, caplog: Any
) -> None:
    server = _start(forbidden_bases=(BASE,))
    try:
        _point_at(monkeypatch, server)
        message = _sync_error(write_artifacts(tmp_path / "target"), capsys, caplog)
        assert "403" in message and "data.records:write" in message and BASE in message
    finally:
        server.stop()


def test_404_unknown_base(
    monkeypatch: pytest.MonkeyPatch, env: FakeAirtable, tmp_path: Path, capsys: Any, caplog: Any
) -> None:
    monkeypatch.setenv("AIRTABLE_BASE_ID", "appNoSuchBase0000")
    message = _sync_error(write_artifacts(tmp_path / "target"), capsys, caplog)
    assert "404" in message and "appNoSuchBase0000" in message and "AIRTABLE_BASE_ID" in message


def test_404_unknown_table(
    monkeypatch: pytest.MonkeyPatch, env: FakeAirtable, tmp_path: Path, capsys: Any, caplog: Any
) -> None:
    monkeypatch.setenv("AIRTABLE_TABLE", "Stagez")
    message = _sync_error(write_artifacts(tmp_path / "target"), capsys, caplog)
    assert "404" in message and "'Stagez'" in message and "AIRTABLE_TABLE" in message


def test_422_unknown_field_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any, caplog: Any
) -> None:
    schema = {k: v for k, v in STAGES_SCHEMA.items() if k != "Invocation ID"}
    server = _start(tables={"Stages": schema})
    try:
        _point_at(monkeypatch, server)
        message = _sync_error(write_artifacts(tmp_path / "target"), capsys, caplog)
        assert 'no field "Invocation ID"' in message and "UNKNOWN_FIELD_NAME" in message
        assert "single line text" in message
        assert server.rows() == []  # a rejected batch writes nothing
    finally:
        server.stop()


def test_422_unknown_select_option_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any, caplog: Any
) -> None:
    schema = dict(STAGES_SCHEMA)
    schema["Status"] = {"type": "singleSelect", "options": ["Todo", "In Progress", "Failed"]}
    server = _start(tables={"Stages": schema})
    try:
        _point_at(monkeypatch, server)
        message = _sync_error(write_artifacts(tmp_path / "target"), capsys, caplog)
        assert "Status field" in message and 'no select option "Done"' in message
        assert "Todo, In Progress, Done, Failed" in message
    finally:
        server.stop()


def test_422_wrong_field_type_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any, caplog: Any
) -> None:
    schema = dict(STAGES_SCHEMA)
    schema["Rows"] = {"type": "singleLineText"}
    server = _start(tables={"Stages": schema})
    try:
        _point_at(monkeypatch, server)
        message = _sync_error(write_artifacts(tmp_path / "target"), capsys, caplog)
        assert 'field "Rows"' in message and "number (integer)" in message
    finally:
        server.stop()


def test_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    server = _start()
    url = server.url
    server.stop()
    monkeypatch.setenv("AIRTABLE_API_KEY", TOKEN)
    monkeypatch.setenv("AIRTABLE_BASE_ID", BASE)
    monkeypatch.setenv("AIRTABLE_ENDPOINT_URL", url)
    with pytest.raises(BqxError, match="connection to AirTable") as info:
        airtable.sync(write_artifacts(tmp_path / "target"))
    _no_token(info.value.message)


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_artifacts(tmp_path / "target")
    with pytest.raises(BqxError, match="AIRTABLE_API_KEY is not set"):
        airtable.sync(path)
    monkeypatch.setenv("AIRTABLE_API_KEY", TOKEN)
    with pytest.raises(BqxError, match="AIRTABLE_BASE_ID is not set") as info:
        airtable.sync(path)
    _no_token(info.value.message)
    monkeypatch.setenv("AIRTABLE_BASE_ID", BASE)
    monkeypatch.setenv("AIRTABLE_ENDPOINT_URL", "ftp://example.com")
    with pytest.raises(BqxError, match="AIRTABLE_ENDPOINT_URL"):
        airtable.sync(path)


def test_settings_never_show_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRTABLE_API_KEY", TOKEN)
    monkeypatch.setenv("AIRTABLE_BASE_ID", BASE)
    monkeypatch.setenv("AIRTABLE_ENDPOINT_URL", "https://api.airtable.com/v0/")
    settings = airtable.settings_from_env()
    assert settings.endpoint == "https://api.airtable.com"
    assert settings.table == "Stages"
    _no_token(repr(settings), str(settings))


# --- dry run -------------------------------------------------------------------------


def test_dry_run_prints_a_table_and_sends_nothing(
    fake: FakeAirtable, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_artifacts(tmp_path / "target", outcome=_failed_run_outcome())
    assert cli.main(["airtable", "sync", "--run-results", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("Stage Code"))
    assert lines[header + 1].startswith("----------  ")
    for col in ("Stage ID", "Status", "Actual Duration (h)", "Completion Date", "Rows", "Notes"):
        assert col in lines[header]
    body = "\n".join(lines[header + 2 :])
    assert "BQX-2.12    reg_bqx" in body and "Failed" in body
    assert "Todo (only if new)" in body
    assert "reg_bqx_gbpusd" in body
    status_col = lines[header].index("Status")
    assert lines[header + 2][status_col:].startswith("Done")  # columns line up
    assert "nothing sent" in out and "AIRTABLE_BASE_ID unset" in out
    assert fake.log == []


def test_bqx_airtable_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["airtable"])
    assert info.value.code == 2
    assert "ACTION" in capsys.readouterr().err


# --- report_stage (used by bqx export) -----------------------------------------------


def test_report_stage_without_token_is_a_noop(capsys: pytest.CaptureFixture[str]) -> None:
    assert airtable.report_stage("BQX-2.7", "Done", 10, 1.0, "x") is False
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "AIRTABLE_API_KEY is not set" in err[0] and "BQX-2.7" in err[0]


def test_report_stage_creates_then_updates(
    env: FakeAirtable, capsys: pytest.CaptureFixture[str]
) -> None:
    assert airtable.report_stage("BQX-2.7", "In Progress", None, None, "started")
    row = env.by_key()["BQX-2.7"]
    assert row["Status"] == "In Progress" and row["Stage ID"] == "export"
    assert "Completion Date" not in row
    assert airtable.report_stage(
        "BQX-2.7", "Done", 1_234_567, 7200.0, "336 objects", invocation_id="export-1"
    )
    rows = env.rows()
    assert len(rows) == 1 and rows[0]["id"] == row["id"]
    done = rows[0]
    assert done["Status"] == "Done" and done["Rows"] == 1_234_567
    assert done["Actual Duration"] == 2.0 and done["Notes"] == "336 objects"
    assert done["Completion Date"] == dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert done["Invocation ID"] == "export-1"
    _no_token(*capsys.readouterr())


def test_report_stage_checks_its_arguments(env: FakeAirtable) -> None:
    with pytest.raises(BqxError, match="not one of Todo, In Progress, Done, Failed"):
        airtable.report_stage("BQX-2.7", "Finished")
    with pytest.raises(BqxError, match="BQX-9.9 is not in the stage map"):
        airtable.report_stage("BQX-9.9", "Done")
    assert env.log == []


# --- the limiter ---------------------------------------------------------------------


def test_rate_limiter_spaces_requests() -> None:
    limiter = airtable.RateLimiter(per_second=5, window=0.5)
    started = time.monotonic()
    stamps = []
    for _ in range(11):
        with limiter:
            stamps.append(time.monotonic())
    assert time.monotonic() - started >= 1.0  # requests 6 and 11 waited a window each
    for i in range(5, 11):
        assert stamps[i] - stamps[i - 5] >= 0.5
