"""A local stand-in for the AirTable REST API (v0), for the tests of py_tasks.airtable.

It serves one base on 127.0.0.1 from a ThreadingHTTPServer in a thread and keeps the
records in memory. It speaks the subset of the API pyairtable uses for records and
enforces AirTable's rules, so a client that breaks them fails here as it would there:

- ``Authorization: Bearer <token>`` or 401 AUTHENTICATION_REQUIRED;
- unknown base or table: 404; a base listed in ``forbidden_bases``: 403;
- more than ``rate_limit`` requests to the base in any ``window`` seconds: 429
  (rejected requests do not count);
- list records: GET ``/v0/{base}/{table}`` (and POST ``.../listRecords``) with
  filterByFormula (field references, strings, numbers, = != < > <= >=, AND/OR/NOT,
  TRUE()/FALSE(), BLANK()), ``fields[]``, ``maxRecords`` and ``pageSize``/``offset``
  paging (page size capped by ``max_page_size``);
- create: POST with ``records`` (at most 10) or ``fields``;
- update: PATCH (merge) or PUT (replace) with ``records`` (at most 10), each with an
  ``id`` or, with ``performUpsert.fieldsToMergeOn``, matched on those fields (created
  when no record matches, 422 when several do);
- unknown field names -> 422 UNKNOWN_FIELD_NAME; a select value that is not an option
  -> 422 INVALID_MULTIPLE_CHOICE_OPTIONS (unless ``typecast``); a value of the wrong
  type -> 422 INVALID_VALUE_FOR_COLUMN. A failing batch changes nothing.

The table schema (field name -> type and options) is the fake's configuration.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAX_RECORDS = 10

STAGES_SCHEMA: dict[str, dict[str, Any]] = {
    "Stage Code": {"type": "singleLineText"},
    "Stage ID": {"type": "singleLineText"},
    "Status": {"type": "singleSelect", "options": ["Todo", "In Progress", "Done", "Failed"]},
    "Actual Duration": {"type": "number"},
    "Completion Date": {"type": "date"},
    "Rows": {"type": "number"},
    "Notes": {"type": "multilineText"},
    "Invocation ID": {"type": "singleLineText"},
}


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(status)
        self.status = status
        self.body = body


def _error(status: int, etype: str, message: str) -> ApiError:
    return ApiError(status, {"error": {"type": etype, "message": message}})


# --- filterByFormula -----------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<field>\{(?:\\.|[^}\\])*\})
    | (?P<str>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<op><=|>=|!=|=|<|>)
    | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _tokens(formula: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    formula = formula.strip()
    while pos < len(formula):
        m = _TOKEN.match(formula, pos)
        if not m or m.end() == pos:
            raise _error(422, "INVALID_FILTER_BY_FORMULA", f"Invalid formula: {formula!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(formula) and formula[pos].isspace():
            pos += 1
    return out


class _Formula:
    """Parses a formula once; ``evaluate(fields)`` gives its value for a record."""

    def __init__(self, formula: str, schema: dict[str, Any]):
        self.schema = schema
        self.toks = _tokens(formula)
        self.i = 0
        self.tree = self._expr()
        if self.i != len(self.toks):
            raise _error(422, "INVALID_FILTER_BY_FORMULA", f"Invalid formula: {formula!r}")

    def _peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("", "")

    def _take(self, value: str | None = None) -> tuple[str, str]:
        tok = self._peek()
        if not tok[0] or (value is not None and tok[1] != value):
            raise _error(422, "INVALID_FILTER_BY_FORMULA", f"expected {value or 'a value'}")
        self.i += 1
        return tok

    def _expr(self) -> Callable[[dict[str, Any]], Any]:
        left = self._primary()
        kind, op = self._peek()
        if kind != "op":
            return left
        self.i += 1
        right = self._primary()
        return lambda f: _compare(op, left(f), right(f))

    def _primary(self) -> Callable[[dict[str, Any]], Any]:
        kind, text = self._take()
        if kind == "field":
            name = _unescape(text[1:-1])
            if name not in self.schema:
                raise _error(
                    422, "INVALID_FILTER_BY_FORMULA", f"Unknown field names: {name.lower()}"
                )
            return lambda f: f.get(name)
        if kind == "str":
            value = _unescape(text[1:-1])
            return lambda f: value
        if kind == "num":
            number = float(text)
            return lambda f: number
        if kind == "punct" and text == "(":
            inner = self._expr()
            self._take(")")
            return inner
        if kind == "name":
            func = text.upper()
            self._take("(")
            args: list[Callable[[dict[str, Any]], Any]] = []
            if self._peek() != ("punct", ")"):
                args.append(self._expr())
                while self._peek() == ("punct", ","):
                    self.i += 1
                    args.append(self._expr())
            self._take(")")
            if func == "AND":
                return lambda f: all(_truthy(a(f)) for a in args)
            if func == "OR":
                return lambda f: any(_truthy(a(f)) for a in args)
            if func == "NOT" and len(args) == 1:
                return lambda f: not _truthy(args[0](f))
            if func in ("TRUE", "FALSE") and not args:
                return lambda f: func == "TRUE"
            if func == "BLANK" and not args:
                return lambda f: None
            raise _error(422, "INVALID_FILTER_BY_FORMULA", f"Unknown function {func}")
        raise _error(422, "INVALID_FILTER_BY_FORMULA", f"Unexpected {text!r}")


def _truthy(value: Any) -> bool:
    return bool(value) and value != "0"


def _compare(op: str, a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        try:
            a, b = float(a or 0), float(b or 0)
        except (TypeError, ValueError):
            return False
    else:
        a, b = "" if a is None else str(a), "" if b is None else str(b)
    return {
        "=": a == b,
        "!=": a != b,
        "<": a < b,
        ">": a > b,
        "<=": a <= b,
        ">=": a >= b,
    }[op]


# --- the server ----------------------------------------------------------------------


class FakeAirtable:
    """An in-memory AirTable base. ``start()`` serves it; ``url`` is the API root to
    give pyairtable as ``endpoint_url``."""

    def __init__(
        self,
        token: str,
        base_id: str = "appFakeBase000001",
        tables: dict[str, dict[str, dict[str, Any]]] | None = None,
        *,
        rate_limit: int = 5,
        window: float = 1.0,
        max_page_size: int = 100,
        forbidden_bases: tuple[str, ...] = (),
    ):
        self.token = token
        self.base_id = base_id
        self.schemas = {
            name: {k: dict(v) for k, v in schema.items()}
            for name, schema in (tables or {"Stages": STAGES_SCHEMA}).items()
        }
        self.records: dict[str, list[dict[str, Any]]] = {name: [] for name in self.schemas}
        self.rate_limit = rate_limit
        self.window = window
        self.max_page_size = max_page_size
        self.forbidden_bases = forbidden_bases
        self.log: list[dict[str, Any]] = []  # one entry per request: method, path, status...
        self.lock = threading.Lock()
        self._arrivals: deque[float] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle
    def start(self) -> FakeAirtable:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- helpers for tests
    def rows(self, table: str = "Stages") -> list[dict[str, Any]]:
        with self.lock:
            return [{"id": r["id"], **r["fields"]} for r in self.records[table]]

    def by_key(self, key: str = "Stage Code", table: str = "Stages") -> dict[str, dict[str, Any]]:
        return {r[key]: r for r in self.rows(table) if key in r}

    def statuses(self) -> list[int]:
        with self.lock:
            return [entry["status"] for entry in self.log]

    def use_up_rate_limit(self) -> None:
        """Act as another client that just spent the base's whole budget."""
        with self.lock:
            now = time.monotonic()
            self._arrivals.extend([now] * self.rate_limit)

    # --- request handling
    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        entry: dict[str, Any] = {"method": method, "path": path, "records": 0}
        try:
            payload = self._json(body) if body else {}
            if isinstance(payload, dict) and isinstance(payload.get("records"), list):
                entry["records"] = len(payload["records"])
            status, out = self._route(method, path, headers, payload)
        except ApiError as exc:
            status, out = exc.status, exc.body
        entry["status"] = status
        with self.lock:
            self.log.append(entry)
        return status, out

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError:
            raise _error(
                422, "INVALID_REQUEST_UNKNOWN", "Invalid request: body is not JSON"
            ) from None

    def _rate_check(self) -> None:
        with self.lock:
            now = time.monotonic()
            while self._arrivals and self._arrivals[0] <= now - self.window:
                self._arrivals.popleft()
            if len(self._arrivals) >= self.rate_limit:
                raise ApiError(
                    429,
                    {
                        "errors": [
                            {
                                "error": "RATE_LIMIT_REACHED",
                                "message": "Rate limit exceeded. Please try again later",
                            }
                        ]
                    },
                )
            self._arrivals.append(now)

    def _route(self, method: str, path: str, headers: Any, payload: Any) -> tuple[int, Any]:
        self._rate_check()
        if headers.get("Authorization") != f"Bearer {self.token}":
            raise _error(401, "AUTHENTICATION_REQUIRED", "Authentication required")
        parts = urlsplit(path)
        segs = [unquote(s) for s in parts.path.split("/") if s]
        if len(segs) < 3 or segs[0] != "v0":
            raise _error(404, "NOT_FOUND", "Could not find what you are looking for")
        base, table = segs[1], segs[2]
        if base in self.forbidden_bases:
            raise _error(
                403,
                "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                "Invalid permissions, or the requested model was not found.",
            )
        if base != self.base_id:
            raise _error(404, "NOT_FOUND", "Could not find what you are looking for")
        if table not in self.schemas:
            raise _error(
                404,
                "TABLE_NOT_FOUND",
                f"Could not find table {table} in application {base}",
            )
        rest = segs[3:]
        query = parse_qs(parts.query, keep_blank_values=True)
        with self.lock:
            if method == "GET" and not rest:
                return 200, self._list(table, {k: v for k, v in query.items()})
            if method == "POST" and rest == ["listRecords"]:
                params = {k: [v] for k, v in payload.items() if k != "fields"}
                if "fields" in payload:
                    params["fields[]"] = list(payload["fields"])
                return 200, self._list(table, params)
            if method == "POST" and not rest:
                return 200, self._create(table, payload)
            if method in ("PATCH", "PUT") and not rest:
                return 200, self._update(table, payload, replace=method == "PUT")
            if method in ("PATCH", "PUT") and len(rest) == 1:
                one = {"records": [{"id": rest[0], "fields": payload.get("fields") or {}}]}
                out = self._update(table, {**payload, **one}, replace=method == "PUT")
                return 200, out["records"][0]
            if method == "GET" and len(rest) == 1:
                return 200, self._public(self._find(table, rest[0]))
            if method == "DELETE":
                raise _error(405, "METHOD_NOT_ALLOWED", "this fake does not delete records")
        raise _error(404, "NOT_FOUND", "Could not find what you are looking for")

    # --- records
    def _find(self, table: str, rec_id: str) -> dict[str, Any]:
        for rec in self.records[table]:
            if rec["id"] == rec_id:
                return rec
        raise _error(404, "MODEL_ID_NOT_FOUND", f"Record {rec_id} not found")

    @staticmethod
    def _public(rec: dict[str, Any], fields: list[str] | None = None) -> dict[str, Any]:
        shown = {
            k: v
            for k, v in rec["fields"].items()
            if v not in (None, "") and (not fields or k in fields)
        }
        return {"id": rec["id"], "createdTime": rec["createdTime"], "fields": shown}

    def _list(self, table: str, params: dict[str, list[Any]]) -> dict[str, Any]:
        schema = self.schemas[table]
        rows = self.records[table]
        formula = (params.get("filterByFormula") or [""])[0]
        if formula:
            f = _Formula(str(formula), schema)
            rows = [r for r in rows if _truthy(f.tree(r["fields"]))]
        fields = params.get("fields[]") or None
        for name in fields or []:
            if name not in schema:
                raise _error(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        if params.get("maxRecords"):
            rows = rows[: int(params["maxRecords"][0])]
        try:
            size = int((params.get("pageSize") or [100])[0])
            start = int(str((params.get("offset") or ["itr0"])[0]).removeprefix("itr"))
        except ValueError:
            raise _error(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE", "Invalid offset") from None
        size = max(1, min(size, 100, self.max_page_size))
        page = rows[start : start + size]
        out: dict[str, Any] = {"records": [self._public(r, fields) for r in page]}
        if start + size < len(rows):
            out["offset"] = f"itr{start + size}"
        return out

    def _check_fields(self, table: str, fields: Any, typecast: bool) -> None:
        schema = self.schemas[table]
        if not isinstance(fields, dict):
            raise _error(
                422, "INVALID_REQUEST_UNKNOWN", "Invalid request: fields must be an object"
            )
        for name, value in fields.items():
            if name not in schema:
                raise _error(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
            if value is None:
                continue
            ftype = schema[name]["type"]
            bad = False
            if ftype in ("singleLineText", "multilineText"):
                bad = not isinstance(value, str)
            elif ftype == "number":
                bad = isinstance(value, bool) or not isinstance(value, (int, float))
            elif ftype == "date":
                bad = not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value))
            elif ftype == "singleSelect":
                if not isinstance(value, str):
                    bad = True
                elif value not in schema[name]["options"] and not typecast:
                    raise _error(
                        422,
                        "INVALID_MULTIPLE_CHOICE_OPTIONS",
                        f'Insufficient permissions to create new select option ""{value}""',
                    )
            if bad:
                raise _error(
                    422,
                    "INVALID_VALUE_FOR_COLUMN",
                    f'Field "{name}" cannot accept the provided value',
                )

    def _apply(self, table: str, rec: dict[str, Any], fields: dict[str, Any], typecast: bool):
        schema = self.schemas[table]
        for name, value in fields.items():
            spec = schema[name]
            if spec["type"] == "singleSelect" and value is not None:
                if value not in spec["options"]:  # typecast: AirTable adds the option
                    spec["options"].append(value)
            if value is None or value == "":
                rec["fields"].pop(name, None)
            else:
                rec["fields"][name] = value

    def _new(self) -> dict[str, Any]:
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return {"id": "rec" + secrets.token_hex(7), "createdTime": now, "fields": {}}

    def _batch(self, payload: Any) -> list[dict[str, Any]]:
        if not isinstance(payload, dict):
            raise _error(422, "INVALID_REQUEST_UNKNOWN", "Invalid request: body must be an object")
        records = payload.get("records")
        if records is None and "fields" in payload:
            records = [{"fields": payload["fields"]}]
        if not isinstance(records, list) or not records:
            raise _error(422, "INVALID_REQUEST_MISSING_FIELDS", 'Could not find field "records"')
        if len(records) > MAX_RECORDS:
            raise _error(
                422,
                "INVALID_RECORDS",
                f"You can create or update at most {MAX_RECORDS} records per request "
                f"(got {len(records)})",
            )
        return records

    def _create(self, table: str, payload: Any) -> dict[str, Any]:
        records = self._batch(payload)
        typecast = bool(payload.get("typecast"))
        for r in records:
            self._check_fields(table, r.get("fields"), typecast)
        created = []
        for r in records:
            rec = self._new()
            self._apply(table, rec, r["fields"], typecast)
            self.records[table].append(rec)
            created.append(rec)
        if "records" not in payload:
            return self._public(created[0])
        return {"records": [self._public(r) for r in created]}

    def _update(self, table: str, payload: Any, *, replace: bool) -> dict[str, Any]:
        records = self._batch(payload)
        typecast = bool(payload.get("typecast"))
        upsert = payload.get("performUpsert")
        merge_on: list[str] = []
        if upsert is not None:
            merge_on = (upsert or {}).get("fieldsToMergeOn") or []
            if not merge_on or len(merge_on) > 3:
                raise _error(
                    422,
                    "INVALID_VALUE_FOR_COLUMN",
                    "performUpsert.fieldsToMergeOn needs one to three field names",
                )
            for name in merge_on:
                if name not in self.schemas[table]:
                    raise _error(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        plan: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
        for r in records:
            fields = r.get("fields") or {}
            self._check_fields(table, fields, typecast)
            if r.get("id"):
                plan.append((self._find(table, r["id"]), fields))
                continue
            if not merge_on:
                raise _error(422, "INVALID_RECORDS", "Each record needs an id (or performUpsert)")
            missing = [m for m in merge_on if fields.get(m) in (None, "")]
            if missing:
                raise _error(
                    422,
                    "INVALID_VALUE_FOR_COLUMN",
                    f'Field "{missing[0]}" is used in fieldsToMergeOn and needs a value',
                )
            key = [fields[m] for m in merge_on]
            matches = [
                rec
                for rec in self.records[table]
                if [rec["fields"].get(m) for m in merge_on] == key
            ]
            pending = [f for rec, f in plan if rec is None and [f.get(m) for m in merge_on] == key]
            if len(matches) > 1 or pending:
                raise _error(
                    422,
                    "INVALID_RECORDS",
                    f"fieldsToMergeOn {merge_on} matches more than one record for {key}",
                )
            plan.append((matches[0] if matches else None, fields))
        out: dict[str, Any] = {"records": []}
        created, updated = [], []
        for rec, fields in plan:
            if rec is None:
                rec = self._new()
                self.records[table].append(rec)
                created.append(rec["id"])
            else:
                updated.append(rec["id"])
                if replace:
                    rec["fields"] = {}
            self._apply(table, rec, fields, typecast)
            out["records"].append(self._public(rec))
        if upsert is not None:
            out["createdRecords"] = created
            out["updatedRecords"] = updated
        return out


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeAirtable/1.0"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake: FakeAirtable = self.server.fake  # type: ignore[attr-defined]
        status, out = fake.handle(self.command, self.path, self.headers, body)
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass
