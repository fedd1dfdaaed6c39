"""``run_dbt`` for the tests: one dbt target directory per set of ``--vars``.

dbt's partial parsing keeps one saved manifest per target directory and throws it
away (a full parse of the project, ~20 s on the 2-core machine) whenever the command
line's ``--vars`` differ from the previous call's. Tests that alternate between the
defaults and some vars (``reg_method: chunk``, ``reprocess_from``, ...) would pay that
on every switch; giving each set of vars its own target directory next to the
session's (``$DBT_TARGET_PATH-vars-<hash>``) makes only the first call with a new set
parse the whole project. Calls without ``--vars`` use ``$DBT_TARGET_PATH`` unchanged,
so ``run_results.json`` of a plain build is where the tests read it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence

from py_tasks import dbtcmd


def _vars_key(args: Sequence[str]) -> str | None:
    args = list(args)
    for i, arg in enumerate(args):
        text = args[i + 1] if arg == "--vars" and i + 1 < len(args) else (
            arg.split("=", 1)[1] if arg.startswith("--vars=") else None)
        if text is not None:
            try:
                canonical = json.dumps(json.loads(text), sort_keys=True)
            except ValueError:  # YAML vars: key on the text itself
                canonical = text
            return hashlib.sha1(canonical.encode()).hexdigest()[:12]
    return None


def run_dbt(args: Sequence[str], url: str | None = None):
    """``py_tasks.dbtcmd.run_dbt(args, url)``, with a target directory of its own when
    ``args`` carry ``--vars`` (and ``DBT_TARGET_PATH`` is set)."""
    key = _vars_key(args)
    base = os.environ.get("DBT_TARGET_PATH")
    if key is None or not base:
        return dbtcmd.run_dbt(args, url)
    os.environ["DBT_TARGET_PATH"] = f"{base}-vars-{key}"
    try:
        return dbtcmd.run_dbt(args, url)
    finally:
        os.environ["DBT_TARGET_PATH"] = base
