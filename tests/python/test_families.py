"""The family registry (py_tasks/families.py) and the project agree. No database."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from py_tasks import crosscheck, crosscheck_bars, demo, export, families
from py_tasks.errors import BqxError

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    """The project's models folder and stage map, copied: free to break."""
    shutil.copytree(PROJECT / "models", tmp_path / "models")
    shutil.copy(PROJECT / "airtable_stages.yml", tmp_path)
    return tmp_path


def test_the_project_matches_the_registry() -> None:
    assert families.problems(PROJECT) == []


def test_a_folder_the_registry_does_not_list_fails(copy: Path) -> None:
    planted = copy / "models" / "momentum"
    planted.mkdir()
    (planted / "momentum_eurusd.sql").write_text("select 1 as ts_utc\n")
    assert families.problems(copy) == [
        "models/momentum is not in the family registry (py_tasks/families.py)"
    ]


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        ("technical/_technical__docs.md", "family technical: docs blocks"),
        ("bollinger/_bollinger__models.yml", "family bollinger: models/bollinger/_bollinger__"),
        ("reg_bqx/reg_bqx_usdjpy.sql", "family reg_bqx: model reg_bqx_usdjpy is missing"),
    ],
)
def test_a_missing_file_of_a_family_fails(copy: Path, remove: str, expected: str) -> None:
    (copy / "models" / remove).unlink()
    found = families.problems(copy)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_missing_stage_or_reference_fails(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = list(families.REGISTRY)
    i = next(i for i, f in enumerate(entries) if f.name == "technical")
    entries[i] = dataclasses.replace(
        entries[i], reference="py_tasks.crosscheck_technical:no_such_reference", stage="BQX-9.9"
    )
    j = next(i for i, f in enumerate(entries) if f.name == "bollinger")
    entries[j] = dataclasses.replace(entries[j], reference="")
    monkeypatch.setattr(families, "REGISTRY", tuple(entries))
    found = families.problems(copy)
    assert any(p.startswith("family technical: cross-check reference") for p in found), found
    assert "family technical has stage BQX-9.9 in the registry, which the stage map lacks" in found
    assert "family bollinger: a feature family needs a cross-check reference" in found


def test_a_stage_the_registry_does_not_give_fails(copy: Path) -> None:
    stages = copy / "airtable_stages.yml"
    stages.write_text(stages.read_text().replace("models: [reg_bqx]", "models: [reg_bqx, bqx]"))
    assert families.problems(copy) == [
        "stage BQX-2.12 lists model folder bqx, whose stage in the registry is none"
    ]


def test_the_commands_offer_every_family_of_the_registry() -> None:
    features = ("bqx", "reg_rate", "reg_bqx", "correlation_bqx", "technical", "bollinger")
    assert families.names(families.features()) == features
    assert export.FAMILIES == features  # bqx export --families
    assert crosscheck.ALL_FAMILIES == features  # bqx crosscheck --family
    assert demo.FAMILIES == features
    assert families.checked_by("py_tasks.crosscheck_bars") == crosscheck_bars.FAMILIES
    # the dispatcher reaches every family through its registry reference's module
    modules = crosscheck.family_modules(features)
    assert [(m.__name__, fams) for m, fams in modules] == [
        ("py_tasks.crosscheck_bars", ["bqx", "reg_rate", "reg_bqx"]),
        ("py_tasks.crosscheck_correlation", ["correlation_bqx"]),
        ("py_tasks.crosscheck_technical", ["technical", "bollinger"]),
    ]
    assert all(callable(m.check) for m, _ in modules)


def test_columns_come_from_the_generated_yaml() -> None:
    assert families.columns("technical")[:3] == ("ts_utc", "rate_index", "sma_10")
    assert len(families.own_columns("bollinger")) == 40  # 4 windows x 2 series x 5
    # copies of an upstream column are not the family's own
    assert "w15_bqx_return" not in families.own_columns("reg_bqx")
    assert export.column_name("reg_rate", "w60_r2") == "reg_rate_w60_r2"
    assert export.column_name("technical", "sma_10") == "sma_10"


# The registry itself and the per-family cross-check modules may name families; no other
# module of py_tasks/ does (issue 28): they ask the registry (flags, fields, functions).
MAY_NAME_FAMILIES = {
    "families.py", "family_columns.py",  # the registry
    "crosscheck_bars.py", "crosscheck_correlation.py", "crosscheck_technical.py",
}
# quoted strings that equal a family's name but mean something else: the project's name
NOT_A_FAMILY = {
    ("cli.py", 'prog="bqx"'),  # the command
    ("config.py", '"BQX_SCHEMA", "bqx"'),  # the default schema
    ("db.py", 'EMBEDDED_DBNAME = "bqx"'),  # the embedded server's database
    ("db.py", "env_var('BQX_SCHEMA', 'bqx')"),  # the default schema, in profiles.yml
}


def test_no_module_outside_the_registry_names_a_family() -> None:
    per_pair = [fam.name for fam in families.REGISTRY if fam.grain == families.PER_PAIR]
    quoted = re.compile("[\"'](" + "|".join(map(re.escape, per_pair)) + ")[\"']")
    found = []
    for path in sorted((PROJECT / "py_tasks").glob("*.py")):
        if path.name in MAY_NAME_FAMILIES:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if quoted.search(line) and not any(
                name == path.name and text in line for name, text in NOT_A_FAMILY
            ):
                found.append(f"py_tasks/{path.name}:{number}: {line.strip()}")
    assert found == [], "ask the registry (py_tasks/families.py) instead:\n" + "\n".join(found)


def test_the_flags_pick_the_families_they_did() -> None:
    def flagged(flag: str) -> tuple[str, ...]:
        return families.names(families.with_flag(flag))

    assert flagged(families.REGRESSION) == ("reg_rate", "reg_bqx")
    assert families.one_with_flag(families.BENCH_BASELINE).name == "reg_rate"
    assert families.one_with_flag(families.PARABOLA).name == "reg_rate"
    assert families.one_with_flag(families.CROSS_PAIR).name == "correlation_bqx"
    assert families.one_with_flag(families.BUILD_HINT).name == "reg_bqx"
    assert {f.name: f.bench_target for f in families.REGISTRY if f.bench_target} == {
        "technical": 3.0, "bollinger": 1.0,
    }
    assert [f.name for f in families.generated() if f.yaml_columns is None] == []
    assert [f.name for f in families.REGISTRY if f.coverage_sql] == ["bqx", "reg_rate", "reg_bqx"]
    with pytest.raises(BqxError):
        families.with_flag("no_such_flag")
