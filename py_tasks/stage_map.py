"""The stage map, ``airtable_stages.yml``: which dbt nodes make which AirTable record.

Read and checked on its own here (:func:`_read_stage_map`); ``bqx airtable sync``
(py_tasks/airtable.py) uses it, and the family registry (py_tasks/families.py) checks
that it gives every family the registry's stage code. Imports neither of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import project_dir
from .errors import BqxError

STAGE_MAP_FILE = "airtable_stages.yml"


@dataclass(frozen=True)
class Stage:
    """One entry of the stage map: which dbt nodes make the AirTable record ``code``."""

    code: str  # Stage Code, e.g. BQX-2.12 (the upsert key)
    id: str  # Stage ID, e.g. reg_bqx
    name: str = ""  # a human title, shown by --dry-run and in the docs
    models: tuple[str, ...] = ()  # model folders under models/ (fqn[1])
    tests: bool = False  # every data test and unit test of the run
    reported_by: str = ""  # a bqx command that reports this stage itself (e.g. bqx export)


_STAGE_KEYS = {"code", "id", "name", "models", "tests", "reported_by"}


def stage_map_path() -> Path:
    return project_dir() / STAGE_MAP_FILE


def _read_stage_map(path: Path) -> list[Stage]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise BqxError(f"stage map {path} not found: create it (see docs/airtable.md)") from None
    except yaml.YAMLError as exc:
        raise BqxError(f"stage map {path} is not valid YAML: {exc}") from None
    entries = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise BqxError(f"stage map {path} needs a non-empty list under 'stages:'")
    stages: list[Stage] = []
    codes: set[str] = set()
    folders: dict[str, str] = {}
    test_stage = ""
    for i, entry in enumerate(entries, 1):
        where = f"stage map {path}, stage {i}"
        if not isinstance(entry, dict):
            raise BqxError(f"{where}: each stage is a mapping with code, id, name, ...")
        unknown = sorted(set(entry) - _STAGE_KEYS)
        if unknown:
            raise BqxError(
                f"{where}: unknown key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(_STAGE_KEYS))}"
            )
        code, sid = str(entry.get("code") or "").strip(), str(entry.get("id") or "").strip()
        if not code or not sid:
            raise BqxError(f"{where}: 'code' (e.g. BQX-2.12) and 'id' (e.g. reg_bqx) are required")
        if code in codes:
            raise BqxError(f"{where}: stage code {code} appears twice")
        codes.add(code)
        models = entry.get("models") or []
        if isinstance(models, str):
            models = [models]
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise BqxError(f"{where} ({code}): 'models' is a list of model folder names")
        for folder in models:
            if folder in folders:
                raise BqxError(
                    f"{where} ({code}): model folder {folder} is already in stage {folders[folder]}"
                )
            folders[folder] = code
        tests = entry.get("tests", False)
        if tests not in (False, True, "all", None):
            raise BqxError(f"{where} ({code}): 'tests' is 'all' (every test of the run) or absent")
        tests = bool(tests)
        if tests:
            if test_stage:
                raise BqxError(f"{where} ({code}): tests already belong to stage {test_stage}")
            test_stage = code
        stages.append(
            Stage(
                code=code,
                id=sid,
                name=str(entry.get("name") or ""),
                models=tuple(models),
                tests=tests,
                reported_by=str(entry.get("reported_by") or ""),
            )
        )
    return stages
