"""`serve_fake_api`: the fake Messages API over real HTTP on 127.0.0.1, for live-mode tests.

A live experiment talks to the API through the real SDK, over a real socket, on a
real event loop. To test that path offline, :func:`serve_fake_api` serves a
:class:`FakeMessagesAPI` (its models and its HTTP faults) on a loopback port from a
thread of its own; point the SDK at the URL it yields (``base_url=`` or
``ANTHROPIC_BASE_URL``). A minimal HTTP/1.1 server: keep-alive, ``Content-Length``
bodies, nothing else — enough for the SDK, not a web server.

Everything the fake's models do runs on the server's real loop: a model that
sleeps, sleeps in real time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import httpx2

from .fake_api import FakeMessagesAPI

__all__ = ["Served", "serve_fake_api"]


class Served(Protocol):
    """What :func:`serve_fake_api` serves: a :class:`FakeMessagesAPI`, or any handler of the
    same shape (a test's server that answers 401, or echoes the request's headers)."""

    @property
    def base_url(self) -> str:
        """The URL its requests are addressed to (the path and the headers are kept)."""
        ...

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one HTTP request."""
        ...


@contextmanager
def serve_fake_api(api: FakeMessagesAPI | Served) -> Iterator[str]:
    """Serve ``api`` on ``http://127.0.0.1:PORT`` while the block runs; yields that URL.

    Example:
        >>> from windtunnel.simulators.fake_api import FakeMessagesAPI
        >>> from windtunnel.simulators import ScriptedModel
        >>> with serve_fake_api(FakeMessagesAPI(ScriptedModel([]))) as url:
        ...     url.startswith("http://127.0.0.1:")
        True
    """
    loop = asyncio.new_event_loop()
    ready: list[str] = []
    started = threading.Event()

    async def start() -> asyncio.Server:
        server = await asyncio.start_server(lambda r, w: _connection(api, r, w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ready.append(f"http://127.0.0.1:{port}")
        return server

    def main() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(start())
        started.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=main, name="windtunnel-fake-api", daemon=True)
    thread.start()
    started.wait()
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


async def _connection(
    api: FakeMessagesAPI | Served, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers: list[tuple[str, str]] = []
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                headers.append((name.strip(), value.strip()))
            length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
            body = await reader.readexactly(length) if length else b""
            request = httpx2.Request(method, api.base_url + target, headers=headers, content=body)
            try:
                response = await api.handle(request)
                status, content, sent = response.status_code, response.content, list(response.headers.items())
            except (httpx2.TimeoutException, httpx2.TransportError):
                return  # the client sees its connection dropped, as after a timeout
            sent = [(k, v) for k, v in sent if k.lower() not in ("content-length", "transfer-encoding")]
            head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"content-length: {len(content)}"]
            head += [f"{k}: {v}" for k, v in sent]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        return
    finally:
        writer.close()


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    529: "Overloaded",
}
