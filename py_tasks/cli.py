"""The ``bqx`` command: a thin argparse layer over one module per task.

Each task module exposes ``register(subparsers)``, which adds its sub-command and
sets ``func`` to a function taking the parsed ``argparse.Namespace`` and returning
an exit code. No logic lives here: only dispatch and error reporting.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import BqxError

# Module names under py_tasks that provide a sub-command, in help order.
TASK_MODULES = (
    "dbcmd",
    "sample",
    "load",
    "dbtcmd",
    "codegen",
    "demo",
    "crosscheck",
    "bench",
    "export",
    "airtable",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bqx",
        description="bqx: FX features in PostgreSQL with dbt. See README.md.",
    )
    parser.add_argument("--version", action="version", version=f"bqx {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in TASK_MODULES:
        try:
            module = importlib.import_module(f"py_tasks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"py_tasks.{name}":
                continue  # task not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BqxError as exc:
        print(f"bqx: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bqx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
