"""A moto server on a free loopback port (`python -m bench.moto_server`), a boto3 client of it,
objects put straight into its backend, and its request log, where LIST requests are counted."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from host import REGION, REPO, BenchError

# a LIST request in moto's request log: ListObjectsV2, or v1 with a prefix or marker
_LIST_LINE = re.compile(r'"GET /[^/?\s]+/?\?\S*(list-type=2|prefix=|marker=)\S* HTTP')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Moto:
    """A moto server on a free loopback port, for the length of a `with` block."""

    def __init__(self, workdir: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self._log = workdir / "moto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    def __enter__(self) -> Moto:
        port = self.url.rsplit(":", 1)[1]
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "bench.moto_server", "-H", "127.0.0.1", "-p", port],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).close()
                return self
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise BenchError(f"moto server did not start (see {self._log})") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
            self._proc = None

    @property
    def s3(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.url,
                region_name=REGION,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                config=Config(max_pool_connections=16),
            )
        return self._client

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=30).close()

    def create_buckets(self, names: Iterable[str]) -> None:
        for name in names:
            self.s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
            )

    def preload(self, bucket: str, count: int, *, prefix: str) -> None:
        """`count` small objects under `prefix` (not timed)."""
        self.put_direct(
            bucket, [(f"{prefix}{i % 20:02d}/{i:06d}.dat", i % 97) for i in range(count)]
        )

    def put_direct(self, bucket: str, objects: Sequence[tuple[str, int]]) -> None:
        """Put (key, size) objects straight into moto's backend, bypassing HTTP (not timed)."""
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            raise BenchError("moto server is not running")
        order = json.dumps({"bucket": bucket, "objects": list(objects)})
        self._proc.stdin.write(order.encode() + b"\n")
        self._proc.stdin.flush()
        if self._proc.stdout.readline() != b"preloaded\n":
            raise BenchError(f"moto did not preload {bucket} (see {self._log})")

    def log_size(self) -> int:
        """Where moto's request log ends now: pass it to `list_requests` after a run."""
        return self._log.stat().st_size

    def list_requests(self, since: int) -> int:
        """LIST requests moto logged since `since` (a `log_size`)."""
        with open(self._log, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return sum(1 for line in text.splitlines() if _LIST_LINE.search(line))
