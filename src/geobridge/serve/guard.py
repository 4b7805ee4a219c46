"""An ASGI middleware that keeps slow and greedy clients from taking the service.

- A request body must arrive within ``body_timeout_s`` seconds of the request's start; for a
  client that sends headers and then stalls, reading the body raises :class:`BodyTimeout`,
  which the app answers with 408, and its slot is freed.
- At most ``max_per_client`` requests of one client address are in progress at once; more are
  refused at once with 429 (``Retry-After``), before their body is read.
- Paths in ``exempt`` (``/health``) are never limited, so the service can always say it is up.

Refusals are JSON ``{"error": code, "detail": message}`` like every other refusal of the app.
Clients are told apart by address: behind a reverse proxy, let the proxy do this instead.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_BODY_TIMEOUT_S = 15.0
DEFAULT_MAX_PER_CLIENT = 32


@dataclass(frozen=True)
class ClientLimits:
    """How long a body may take to arrive, and how many requests one client may have in progress."""

    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    max_per_client: int = DEFAULT_MAX_PER_CLIENT
    exempt: tuple[str, ...] = ("/health",)


class BodyTimeout(Exception):
    """The client did not send its whole body in time; the wrapped app answers it (408)."""


class ClientGuard:
    """Wraps an ASGI app with the body deadline and the per-client limit of :class:`ClientLimits`."""

    def __init__(self, app: ASGIApp, limits: ClientLimits | None = None) -> None:
        self.app = app
        self.limits = limits or ClientLimits()
        self.in_progress: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.limits.exempt:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.in_progress[client] >= self.limits.max_per_client:
            await _refuse(
                send,
                429,
                "too_many_requests",
                f"{self.limits.max_per_client} requests from {client} are already in progress; "
                "wait for one to finish",
                {"retry-after": "1"},
            )
            return
        self.in_progress[client] += 1
        try:
            await self._with_deadline(scope, receive, send)
        finally:
            self.in_progress[client] -= 1
            if not self.in_progress[client]:
                del self.in_progress[client]

    async def _with_deadline(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = time.monotonic() + self.limits.body_timeout_s
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # after the body, receive only waits for a disconnect: no deadline
                return await receive()
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                message = await receive()
                body_done = message["type"] != "http.request" or not message.get("more_body", False)
                return message
            raise BodyTimeout(
                f"the request body did not arrive within {self.limits.body_timeout_s:g} s; "
                "send it at once after the headers"
            )

        await self.app(scope, timed_receive, send)


async def _refuse(send: Send, status: int, code: str, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
