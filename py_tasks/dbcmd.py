"""``bqx db start|stop|status|url``: the selected PostgreSQL server."""

from __future__ import annotations

import argparse
import os

from . import db
from .config import state_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "db",
        help="start/stop/inspect the database (embedded unless BQX_DATABASE_URL is set)",
        description="Without BQX_DATABASE_URL, bqx runs an embedded PostgreSQL from .bqx/ "
        "on a Unix socket. `start` also writes .bqx/profiles.yml for plain dbt.",
    )
    parser.add_argument("action", choices=["start", "stop", "status", "url"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    external = os.environ.get("BQX_DATABASE_URL")
    if args.action == "url":
        print(db.redact(db.database_url()))
        return 0
    if external:
        if args.action == "status":
            with db.connect(external) as conn:
                version = conn.execute("show server_version").fetchone()[0]
            print(f"external PostgreSQL {version} at {db.redact(external)}")
        else:
            db.write_profile()
            print(f"BQX_DATABASE_URL is set ({db.redact(external)}): nothing to {args.action}")
        return 0
    if args.action == "start":
        url = db.start_embedded()
        print(f"embedded PostgreSQL running: {url}")
        print(f"for plain dbt from the project root: export DBT_PROFILES_DIR={state_dir()}")
        return 0
    if args.action == "stop":
        print("stopped" if db.stop_embedded() else "not running")
        return 0
    running = db.embedded_running()
    print(f"embedded PostgreSQL: {'running at ' + db.embedded_url() if running else 'stopped'}")
    return 0 if running else 3
