"""A small fault-injecting HTTP proxy between the AWS CLI and moto.

Each rule matches requests by method and path and says what goes wrong, for
how many requests. Everything else is forwarded unchanged.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import urlsplit

FAULTS = (
    "500",  # InternalError, not forwarded
    "503",  # SlowDown, not forwarded
    "403-expired",  # ExpiredToken, not forwarded
    "reset-before",  # connection reset before the request reaches S3
    "reset-after",  # S3 stores the object, the client sees a reset
    "corrupt",  # one body byte flipped in transit; moto stores it
    "hang",  # accept and never answer
    "stall-body",  # read the first 64 KiB of the body, then neither read nor answer
    "opaque-etag",  # forwarded; ETags rewritten as under SSE-KMS (hex, but not the MD5)
    "hook",  # call `hook(method, path)` first, then forward
)
_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "403-expired": (403, "ExpiredToken", "The provided token has expired."),
}
_HOP_HEADERS = ("content-length", "transfer-encoding", "connection", "date", "server")
_ETAG_XML = re.compile(rb"<ETag>(&quot;|\")?([0-9a-fA-F]{32})(-\d+)?(&quot;|\")?</ETag>")


_KMS_ORIGINALS: dict[bytes, bytes] = {}
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")
_UPLOAD_XML = re.compile(rb"<Upload>.*?</Upload>", re.S)
_INITIATED: dict[bytes, bytes] = {}  # upload id -> when the proxy saw it created


def _real_initiated(method: str, path: str, data: bytes) -> bytes:
    """moto answers every upload's Initiated with a fixed 2010 time; S3 says when it was
    created. The proxy notes the time of each CreateMultipartUpload and answers with it."""
    query = urlsplit(path).query
    if method == "POST" and query.startswith("uploads"):
        for upload_id in _UPLOAD_ID.findall(data):
            now = datetime.datetime.now(datetime.timezone.utc)
            _INITIATED[upload_id] = now.strftime("%Y-%m-%dT%H:%M:%S.000Z").encode()
    if method == "GET" and "uploads" in query.split("&"):

        def fix(upload: re.Match[bytes]) -> bytes:
            found = _UPLOAD_ID.search(upload.group(0))
            when = _INITIATED.get(found.group(1)) if found else None
            if when is None:
                return upload.group(0)
            return re.sub(
                rb"<Initiated>[^<]*</Initiated>",
                b"<Initiated>" + when + b"</Initiated>",
                upload.group(0),
            )

        data = _UPLOAD_XML.sub(fix, data)
    return data


def _kms(etag: bytes) -> bytes:
    """An ETag as SSE-KMS makes it: 32 hex digits that are not the content's MD5."""
    fake = hashlib.md5(b"kms" + etag).hexdigest().encode()
    _KMS_ORIGINALS[fake] = etag
    return fake


def _unkms(body: bytes) -> bytes:
    """Part ETags the client sends back (CompleteMultipartUpload) as moto made them."""
    for fake, original in list(_KMS_ORIGINALS.items()):
        body = body.replace(fake, original)
    return body


@dataclass
class Rule:
    fault: str
    method: str = ".*"
    path: str = ".*"
    times: int = 1_000_000
    hook: Callable[[str, str], None] | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.hits < self.times
            and re.fullmatch(self.method, method) is not None
            and re.search(self.path, path) is not None
        )


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    injected: int = 0
    requests: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    rate: float | None = None  # bytes/s: request bodies are read no faster than this
    check_md5: bool = False  # refuse a body its Content-MD5 does not match, as S3 does

    def add(self, fault: str, **kwargs: object) -> Rule:
        assert fault in FAULTS, fault
        rule = Rule(fault, **kwargs)  # type: ignore[arg-type]
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def pick(self, method: str, path: str) -> Rule | None:
        with self.lock:
            self.requests.append(f"{method} {path}")
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    self.injected += 1
                    return rule
        return None


Reply = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body


def _forward(upstream: str, method: str, path: str, headers: Message, body: bytes) -> Reply:
    """The request as it came, to `upstream`; its answer."""
    target = urlsplit(upstream)
    connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=120)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            if name.lower() not in ("transfer-encoding", "content-length", "expect"):
                connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def _corrupt(body: bytes) -> bytes:
    """One byte in the middle flipped."""
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]


def _md5_matches(headers: Message, body: bytes) -> bool:
    """Whether the body is what its Content-MD5 header says (no header: nothing to check).
    S3 checks it; moto does not."""
    sent = headers.get("Content-MD5")
    return sent is None or base64.b64decode(sent) == hashlib.md5(body).digest()


def _opaque(status: int, headers: list[tuple[str, str]], data: bytes) -> Reply:
    """An answer as under SSE-KMS: each ETag, in the body and the header, not the MD5."""
    data = _ETAG_XML.sub(lambda m: b"<ETag>&quot;" + _kms(m.group(2)) + b"&quot;</ETag>", data)

    def etag(value: str) -> str:
        return '"' + _kms(value.strip('"').encode()).decode() + '"'

    headers = [(k, etag(v) if k.lower() == "etag" else v) for k, v in headers]
    return status, [*headers, ("x-amz-server-side-encryption", "aws:kms")], data


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: ClassVar[FaultProxy]

    def log_message(self, *args: object) -> None:
        pass

    def _read(self, size: int) -> bytes:
        """`size` body bytes, no faster than the proxy's rate (a slow uplink)."""
        rate = self.proxy.rate
        if rate is None:
            return self.rfile.read(size)
        data = b""
        while len(data) < size:
            started = time.monotonic()
            piece = self.rfile.read(min(16384, size - len(data)))
            if not piece:
                break
            data += piece
            time.sleep(max(0.0, len(piece) / rate - (time.monotonic() - started)))
        return data

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self._read(size)
                self.rfile.readline()
        return self._read(int(self.headers.get("Content-Length") or 0))

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _hang(self) -> None:
        self.proxy.stopping.wait(600)
        self._reset()

    def _error(self, code: int, name: str, message: str) -> None:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{name}</Code>'
            f"<Message>{message}</Message></Error>"
        ).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        length = str(len(data))
        for name, value in headers:
            if name.lower() == "content-length" and self.command == "HEAD":
                length = value  # a HEAD's length is the object's, with no body
            elif name.lower() not in _HOP_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _any(self) -> None:
        rule = self.proxy.pick(self.command, self.path)
        fault = rule.fault if rule else None
        if fault == "stall-body":
            self.rfile.read(min(65536, int(self.headers.get("Content-Length") or 65536)))
            self._hang()
            return
        body = self._body()
        if fault in _ERRORS:
            self._error(*_ERRORS[fault])
            return
        if fault == "reset-before":
            self._reset()
            return
        if fault == "hang":
            self._hang()
            return
        if fault == "hook" and rule is not None and rule.hook is not None:
            rule.hook(self.command, self.path)
        if fault == "opaque-etag":
            body = _unkms(body)
        if fault == "corrupt" and body:
            body = _corrupt(body)
        if self.proxy.check_md5 and not _md5_matches(self.headers, body):
            self._error(400, "BadDigest", "The Content-MD5 you specified did not match.")
            return
        status, headers, data = _forward(
            self.proxy.upstream, self.command, self.path, self.headers, body
        )
        reply = (status, headers, _real_initiated(self.command, self.path, data))
        if fault == "reset-after":
            self._reset()
            return
        self._reply(*(_opaque(*reply) if fault == "opaque-etag" else reply))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    """A handler class for this proxy (the server makes one handler per request)."""
    return type("Handler", (_Handler,), {"proxy": proxy})


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.stopping.set()
        server.shutdown()
        server.server_close()
        time.sleep(0)
