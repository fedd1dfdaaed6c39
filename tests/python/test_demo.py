"""`bqx demo` end to end, then the docs site: every model and column described.

One database for the module: the demo writes a 3-day sample of all 28 pairs,
runs `dbt build` (models and every test), the cross-check, and prints a summary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import own_database, point_at

from py_tasks import demo
from py_tasks.cli import main
from py_tasks.dbtcmd import run_dbt

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_db(
    pg_admin_url: str, session_db_name: str, dbt_target_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    # the session's test database name (see conftest.py): dbt's saved manifest stays valid
    mp = pytest.MonkeyPatch()
    with own_database(pg_admin_url, session_db_name) as url:
        point_at(mp, url, tmp_path_factory.mktemp("state"), dbt_target_dir)
        try:
            yield url, str(dbt_target_dir / "target")
        finally:
            mp.undo()


@pytest.mark.slow
def test_demo_builds_tests_and_crosschecks(demo_db, capsys) -> None:
    url, target = demo_db
    code = main(["demo", "--days", "3", "--sample", "20"])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert "cross-check: PASS" in out
    assert " 0 not passed" in out
    # the summary lists the rows of every family that was built
    summary = out[out.index("bqx demo summary"):]
    for family in demo.FAMILIES:
        assert f"    {family} " in summary, family
    results_path = Path(target) / "run_results.json"
    # keep the build's results for the AirTable test (docs generate overwrites them)
    (Path(target).parent / "demo_run_results.json").write_text(results_path.read_text())
    (Path(target).parent / "demo_manifest.json").write_text((Path(target) / "manifest.json").read_text())
    results = json.loads(results_path.read_text())
    statuses = {r["status"] for r in results["results"]}
    assert statuses <= {"success", "pass"}, statuses
    with psycopg.connect(url) as conn:
        at_base = conn.execute(
            "select count(*), count(*) filter (where r.rate_index = 100) from bqx.rate_index r"
            " join bqx.baseline_rates b on r.pair = b.pair and r.ts_utc = b.baseline_ts"
        ).fetchone()
    assert at_base[0] == 28 and at_base[1] == 28


@pytest.mark.slow
def test_docs_generate_and_every_column_described(demo_db) -> None:
    url, target = demo_db
    result = run_dbt(["docs", "generate"], url)
    assert result.success, result.exception
    manifest = json.loads((Path(target) / "manifest.json").read_text())
    catalog = json.loads((Path(target) / "catalog.json").read_text())
    missing = []
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] not in ("model", "seed"):
            continue
        if not node.get("description", "").strip():
            missing.append(uid)
        documented = {c for c, v in node["columns"].items() if v.get("description", "").strip()}
        built = catalog["nodes"].get(uid, {}).get("columns", {})
        assert built, f"{uid} is not in the catalog"
        missing += [f"{uid}.{c}" for c in built if c not in documented]
    for uid, src in manifest["sources"].items():
        built = catalog["sources"].get(uid, {}).get("columns", {})
        documented = {c for c, v in src["columns"].items() if v.get("description", "").strip()}
        missing += [f"{uid}.{c}" for c in built if c not in documented]
    assert not missing, f"{len(missing)} undocumented: {missing[:20]}"


@pytest.mark.slow
def test_airtable_sync_after_demo_creates_then_updates_stages(demo_db, monkeypatch, capsys) -> None:
    """The real run_results.json of the demo's `dbt build`, synced twice to a local
    AirTable: the first sync creates the stage records, the second updates them in
    place; the token is never printed."""
    from fake_airtable import FakeAirtable

    from py_tasks import airtable

    url, target = demo_db
    token, base = "fake-demo-token-not-a-secret", "appDemoBase000001"
    server = FakeAirtable(token, base).start()
    try:
        monkeypatch.setenv("AIRTABLE_API_KEY", token)
        monkeypatch.setenv("AIRTABLE_BASE_ID", base)
        monkeypatch.setenv("AIRTABLE_ENDPOINT_URL", server.url)
        saved = Path(target).parent / "demo_run_results.json"
        if not saved.exists():
            pytest.skip("the demo test did not run")
        # the demo build's run_results.json with the manifest beside it
        build_dir = Path(target).parent / "demo_build"
        build_dir.mkdir(exist_ok=True)
        (build_dir / "run_results.json").write_text(saved.read_text())
        (build_dir / "manifest.json").write_text((Path(target).parent / "demo_manifest.json").read_text())
        run_results = str(build_dir / "run_results.json")
        airtable.sync(run_results)
        first = server.by_key()
        airtable.sync(run_results)
        second = server.by_key()
    finally:
        server.stop()
    out = capsys.readouterr()
    assert token not in out.out + out.err
    assert {"BQX-2.11", "BQX-2.12", "BQX-2.15"} <= set(first)
    assert first["BQX-2.11"]["Status"] == "Done"
    assert first["BQX-2.15"]["Status"] == "Done"
    assert {k: v["id"] for k, v in first.items()} == {k: v["id"] for k, v in second.items()}
    assert len(server.rows()) == len(first)
