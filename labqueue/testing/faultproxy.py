"""A fault-injecting TCP proxy on loopback: a network that drops, on one machine.

    proxy = FaultProxy(target_port=6379).start()   # listens on 127.0.0.1:<proxy.port>
    proxy.delay(0.05)          # every byte arrives 50 ms late, both ways (until heal())
    proxy.cut(2)               # close every connection; for 2 s close new ones at once
    proxy.blackhole(10)        # for 10 s: accept and read, forward nothing (then deliver it)
    proxy.blackhole(10, drop=True)   # ... and throw what was read away
    proxy.heal()               # pass everything again, now
    proxy.stop()

A blackhole is a partition: packets go nowhere, and nobody is told. Without ``drop``, what
was read during it is delivered when it ends, in order, as TCP's retransmissions would once
the network heals; with ``drop`` it is lost, as when the peers time out meanwhile. The
proxy runs its own asyncio loop in a daemon thread; its methods are safe from any thread.
Only loopback addresses are accepted, for listening and for the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field

#: The only addresses a FaultProxy listens on or forwards to.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_CHUNK = 65536


def _loopback(host: str) -> str:
    if host not in LOOPBACK:
        raise ValueError(f"FaultProxy works on loopback only, not {host!r}")
    return host


@dataclass
class _Faults:
    """What the proxy does to bytes right now (times on the loop's clock)."""

    latency: float = 0.0
    hole_from: float = 0.0
    hole_until: float = 0.0
    drop: bool = False
    refuse_until: float = 0.0


@dataclass
class ProxyStats:
    """What went through: connections accepted, bytes forwarded, dropped and held."""

    connections: int = 0
    forwarded: int = 0
    dropped: int = 0
    cuts: int = 0
    refused: int = 0
    open: int = 0


@dataclass
class FaultProxy:
    """Forwards ``127.0.0.1:port`` to ``target_host:target_port``, with faults on demand."""

    target_port: int
    target_host: str = "127.0.0.1"
    host: str = "127.0.0.1"
    port: int = 0
    stats: ProxyStats = field(default_factory=ProxyStats)
    _faults: _Faults = field(default_factory=_Faults)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _links: set[asyncio.StreamWriter] = field(default_factory=set)

    def __post_init__(self) -> None:
        _loopback(self.host)
        _loopback(self.target_host)

    # -- life ------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"fault-proxy-{self.target_port}", daemon=True
        )
        self._thread.start()
        self._server = self._run(self._listen())  # type: ignore[assignment]
        return self

    async def _listen(self) -> asyncio.Server:
        server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(server.sockets[0].getsockname()[1])
        return server

    def stop(self) -> None:
        """Close the listener and every connection; stop the loop."""
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            self._run(self._close_all(listener=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``: the target as a Redis URL through this proxy."""
        return f"redis://{self.host}:{self.port}/0"

    # -- faults ------------------------------------------------------------------------
    def heal(self) -> None:
        """Pass everything, from now on (held bytes are delivered)."""
        self._faults.latency = 0.0
        self._faults.hole_until = 0.0
        self._faults.refuse_until = 0.0
        self._faults.drop = False

    def delay(self, latency: float) -> None:
        """Every byte, both ways, arrives ``latency`` seconds late (until :meth:`heal`)."""
        self._faults.latency = max(0.0, latency)

    def cut(self, seconds: float = 0.0) -> None:
        """Close every open connection now; for ``seconds``, close new ones on arrival."""
        self._faults.refuse_until = self._now() + seconds
        self._run(self._close_all(listener=False))

    def blackhole(self, seconds: float, *, drop: bool = False) -> None:
        """For ``seconds``: connections are accepted and read, nothing is forwarded either
        way. After it, what was held is delivered in order (``drop``: it is thrown away)."""
        now = self._now()
        self._faults.drop = drop
        self._faults.hole_from, self._faults.hole_until = now, now + seconds

    @property
    def blackholed(self) -> bool:
        return self._now() < self._faults.hole_until

    # -- the plumbing --------------------------------------------------------------------
    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    def _run(self, coro: object) -> object:
        assert self._loop is not None, "start() the proxy first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _close_all(self, listener: bool) -> None:
        if listener and self._server is not None:
            self._server.close()
        for writer in list(self._links):
            writer.close()
        self.stats.cuts += len(self._links) // 2
        self._links.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._now() < self._faults.refuse_until:
            self.stats.refused += 1
            client_w.close()
            return
        try:
            upstream_r, upstream_w = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client_w.close()
            return
        self.stats.connections += 1
        self.stats.open += 1
        self._links |= {client_w, upstream_w}
        try:
            await asyncio.gather(
                self._pipe(client_r, upstream_w, client_w),
                self._pipe(upstream_r, client_w, upstream_w),
            )
        finally:
            self.stats.open -= 1
            self._links -= {client_w, upstream_w}
            for w in (client_w, upstream_w):
                w.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        source: asyncio.StreamWriter,
    ) -> None:
        """Read from one side, forward to the other through the faults; in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(queue, writer))
        try:
            while data := await reader.read(_CHUNK):
                await queue.put((self._now(), data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put((self._now(), b""))
            with contextlib.suppress(Exception):
                await sender
            writer.close()
            source.close()

    async def _send(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        while True:
            read_at, data = await queue.get()
            if not data:
                return
            while (wait := read_at + self._faults.latency - self._now()) > 0:
                await asyncio.sleep(min(wait, 0.05))
            faults = self._faults
            if faults.drop and faults.hole_from <= read_at < faults.hole_until:
                self.stats.dropped += len(data)
                continue
            while self._now() < self._faults.hole_until:
                await asyncio.sleep(0.02)
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return
            self.stats.forwarded += len(data)
