"""`SandboxServer`: the sandbox app under uvicorn in a background thread, on a socket it binds itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from person_enrich_mcp.sandbox.app import SandboxState, create_app
from person_enrich_mcp.sandbox.config import SandboxConfig

logger = logging.getLogger(__name__)

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def protocol_class(state: SandboxState) -> type[H11Protocol]:
    """An h11 protocol that registers each connection's transport, so fault responses can cut it."""
    registry = state.transports

    class SandboxH11Protocol(H11Protocol):
        """H11Protocol plus a client-address -> transport registry entry per connection."""

        def connection_made(self, transport: asyncio.Transport) -> None:
            """Register the transport under the client's address."""
            super().connection_made(transport)
            if self.client is not None:
                registry[self.client] = transport

        def connection_lost(self, exc: Exception | None) -> None:
            """Forget the transport."""
            if self.client is not None:
                registry.pop(self.client, None)
            super().connection_lost(exc)

    return SandboxH11Protocol


def uvicorn_config(app: Starlette, *, access_log: bool = False, **kwargs: Any) -> uvicorn.Config:
    """The uvicorn settings the sandbox runs with: h11 with the transport registry, quiet logs, fast shutdown."""
    state: SandboxState = app.state.sandbox
    return uvicorn.Config(
        app,
        http=protocol_class(state),
        ws="none",
        lifespan="off",
        log_config=None,
        log_level="info" if access_log else "warning",
        access_log=access_log,
        proxy_headers=False,
        server_header=False,
        # A held `timeout` fault must never keep shutdown waiting for long.
        timeout_graceful_shutdown=1,
        **kwargs,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and
    # without it every response waits ~40 ms for the peer's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn.Server that reports when it is serving and remembers its event loop."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start serving, then signal readiness."""
        self.loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        await super().startup(sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        """uvicorn's tick loop, but woken at once by `request_exit` instead of polling every 0.1 s."""
        assert self._wakeup is not None
        counter = 0
        while not self.should_exit:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), 0.1)
            counter = (counter + 1) % 864_000
            if await self.on_tick(counter):
                break

    def request_exit(self) -> None:
        """Ask the server to stop (thread-safe)."""
        self.should_exit = True
        loop, wakeup = self.loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            # RuntimeError: the loop closed in between, so it is stopping anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wakeup.set)


class SandboxServer:
    """The sandbox on a real loopback port, in a daemon thread; use as a context manager."""

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.host = host
        self.port = port
        self.app = create_app(self.config)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def state(self) -> SandboxState:
        """The in-process state (dataset, ledger, faults, config) for tests and benchmarks."""
        return self.app.state.sandbox

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:54321`."""
        if self._socket is None:
            raise RuntimeError("SandboxServer is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        """Bind, start uvicorn in a daemon thread, and return once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("SandboxServer already started")
        sock = bind_socket(self.host, self.port)
        self._socket = sock
        self.port = sock.getsockname()[1]
        self._server = _Server(uvicorn_config(self.app, access_log=self.config.access_log))
        self._thread = threading.Thread(target=self._run, name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        if not self._server.ready.wait(START_TIMEOUT) or self._error is not None:
            self.stop()
            raise RuntimeError(f"sandbox did not start within {START_TIMEOUT} s") from self._error
        logger.debug("sandbox listening on %s", self.url)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # surfaced to start() / stop() callers
            self._error = exc
            logger.exception("sandbox server crashed")
            self._server.ready.set()

    def release_hanging(self) -> None:
        """Cut every request held open by a `timeout` fault, from any thread (the cut runs in the server's loop)."""
        loop = self._server.loop if self._server is not None else None
        if loop is not None and not loop.is_closed():
            # RuntimeError: the loop closed in between, so nothing is left to release.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.state.release_hanging)

    def stop(self) -> None:
        """Stop promptly, cutting any request held open by a `timeout` fault."""
        server, thread = self._server, self._thread
        if thread is None or server is None:
            return
        self.release_hanging()
        server.request_exit()
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
