"""A real HTTP receiver for webhook tests: an aiohttp server on 127.0.0.1 that records every POST.

Scripted answers come first (status, body); then it answers 200. It verifies the HMAC signature of each
delivery with the key it was given. `Receiver.start_in_thread()` runs it in its own event loop for tests
that are synchronous (the integration tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    port: int
    key: bytes = b""
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    delay_seconds: float = 0.0
    _runner: web.AppRunner | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if 200 <= d.answered < 300]

    def signature_ok(self, delivery: Delivery) -> bool:
        expected = "sha256=" + hmac.new(self.key, delivery.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(delivery.headers.get("X-Helm-E2E-Signature", ""), expected)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        status, reply = self.answers.pop(0) if self.answers else (200, b"ok")
        self.deliveries.append(Delivery(request.path, dict(request.headers), body, status))
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": self.url("/elsewhere")})
        return web.Response(status=status, body=reply)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- for synchronous tests ---
    def start_in_thread(self) -> Receiver:
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()

        self._loop, self._thread = loop, threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the webhook receiver did not start")
        return self

    def stop_thread(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None
