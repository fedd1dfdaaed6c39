"""``bqx dbt -- ARGS``: run dbt against the selected database.

dbt runs in-process (``dbtRunner``) from the project directory with the generated
profile (``.bqx/profiles.yml``) and ``BQX_PG_*`` taken from ``BQX_DATABASE_URL``
when it is set, else the embedded server (started when needed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Iterator, Sequence

from . import db
from .config import project_dir
from .errors import BqxError


@contextlib.contextmanager
def dbt_environment(url: str | None = None) -> Iterator[str]:
    """Environment and working directory for dbt against ``url`` (restored afterwards)."""
    url = url or db.database_url(start=True)
    db.write_profile()
    env = db.dbt_env(url)
    saved = {k: os.environ.get(k) for k in env}
    cwd = os.getcwd()
    os.environ.update(env)
    os.chdir(project_dir())
    try:
        yield url
    finally:
        os.chdir(cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_dbt(args: Sequence[str], url: str | None = None):
    """Invoke dbt in-process; returns dbt's ``dbtRunnerResult``."""
    from dbt.cli.main import dbtRunner

    with dbt_environment(url):
        return dbtRunner().invoke(list(args))


def exit_code(result) -> int:
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


def first_line(message: str | None, limit: int = 300) -> str:
    """The first non-empty line of a dbt message; for dbt's generic header ("Database
    Error in model x (path)") the line after it too, since that one says what failed."""
    lines = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
    if not lines:
        return ""
    text = lines[0]
    if len(lines) > 1 and re.match(r"^\w+ Error in \w+ ", text):
        text = f"{text}: {lines[1]}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dbt",
        help="run dbt against the selected database: bqx dbt -- build --select reg_bqx+",
    )
    parser.add_argument("dbt_args", nargs=argparse.REMAINDER, help="arguments for dbt (after --)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dbt_args = (
        [a for a in args.dbt_args if a != "--"] if args.dbt_args[:1] == ["--"] else args.dbt_args
    )
    if not dbt_args:
        raise BqxError("give dbt arguments after --, e.g. `bqx dbt -- build --select reg_bqx+`")
    return exit_code(run_dbt(dbt_args))
