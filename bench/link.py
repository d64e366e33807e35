"""A slow link to moto for the `wan` case: a TCP proxy on a free loopback port that adds a
round trip's delay to every request and can cap the bandwidth.

The delay goes on the first bytes a client sends after the server has spoken (or on a
connection's first bytes): each new request on a kept-alive connection, and a body sent after
`100 Continue`, which costs a round trip on a real link too. Requests are told apart without
parsing HTTP because no contender pipelines: each waits for an answer before it sends again.
Connection set-up (TCP and TLS handshakes, one to three more round trips on a real link) is
not delayed. The cap is one pace per direction shared by all connections, as a link's is.

It runs on an asyncio loop in a thread of the benchmark, so its CPU is the harness's, not a
contender's (those are counted from the processes the harness reaps).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

CHUNK = 64 * 1024  # bytes read at a time: a 100 Mbit/s cap paces in steps of about 5 ms


class Pace:
    """One direction of the link: bytes pass no faster than `rate` bytes/s (None: no cap)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._free = 0.0  # when the link has sent everything handed to it so far

    async def send(self, size: int) -> None:
        if self.rate is None:
            return
        now = asyncio.get_running_loop().time()
        self._free = max(now, self._free) + size / self.rate
        await asyncio.sleep(self._free - now)


@dataclass
class _Connection:
    answered: bool = True  # the server spoke since the client last did: its next bytes are new


class Link:
    """The proxy: `url` leads to `upstream` with `delay` seconds per request, `mbit` cap."""

    def __init__(self, upstream: str, *, delay: float, mbit: float | None = None) -> None:
        target = urlsplit(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.delay = delay
        rate = mbit * 1e6 / 8 if mbit else None
        self._up, self._down = Pace(rate), Pace(rate)
        self.requests = 0  # delays added so far: requests, plus bodies after 100 Continue
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        # Before Python 3.12 nothing else holds a connection's task while it waits on a read:
        # the garbage collector would destroy it and leave its client hanging.
        self._connections: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="link")

    def start(self) -> None:
        self._thread.start()
        listen = asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(listen, self._loop).result(10)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self, client: asyncio.StreamReader, back: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            server, out = await asyncio.open_connection(*self._upstream)
        except OSError:
            back.close()
            self._connections.discard(task)
            return
        connection = _Connection()
        try:
            await asyncio.gather(
                self._pump(client, out, connection, to_server=True),
                self._pump(server, back, connection, to_server=False),
            )
        finally:
            out.close()
            back.close()
            self._connections.discard(task)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: _Connection,
        *,
        to_server: bool,
    ) -> None:
        """Copy one direction until its end of file, then pass the end of file on."""
        try:
            while data := await reader.read(CHUNK):
                if to_server and connection.answered:
                    connection.answered = False
                    self.requests += 1
                    await asyncio.sleep(self.delay)
                elif not to_server:
                    connection.answered = True
                await (self._up if to_server else self._down).send(len(data))
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:  # a reset on either side ends both directions
            writer.close()


@contextmanager
def link(upstream: str, *, delay: float, mbit: float | None = None) -> Iterator[Link]:
    """A running `Link` to `upstream` for the length of the `with` block."""
    proxy = Link(upstream, delay=delay, mbit=mbit)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
