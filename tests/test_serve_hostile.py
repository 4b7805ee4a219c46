"""The service under hostile clients: every refusal a 4xx JSON with a code (never a 500), an
``Allow`` header on 405, HEAD on ``/health``, a deadline on request bodies and a limit on the
requests one client has in progress."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from geobridge.serve.app import create_app
from geobridge.serve.guard import ClientGuard, ClientLimits

pytest_plugins = ["test_serve_api"]  # model_dir, gallery_dir, client fixtures


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (90, 120, 60)).save(out, format="PNG")
    return out.getvalue()


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    return body


def test_an_image_with_the_text_view_is_a_400(client):
    response = client.post("/locate", files={"image": ("q.png", png(), "image/png")}, data={"view": "text"})
    assert "image view" in assert_error(response, 400, "bad_query")["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "a park by a river", "k": 1e400}',
        b'{"text": "a park by a river", "k": -1e400}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"text": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
    ],
)
def test_hostile_json_is_a_400(client, body):
    response = client.post("/locate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("bad_json", "bad_query")


def test_wrong_methods_say_what_is_allowed_and_health_answers_head(client):
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, "/locate")
        assert_error(response, 405, "http_error")
        assert response.headers["allow"] == "POST"
    head = client.head("/health")
    assert head.status_code == 200 and head.content == b""


def test_the_gallery_query_view_check_serves_the_cli_too(gallery_dir, tiny_world_dir):
    """``geobridge locate --view text IMAGE`` used to end in a traceback: it is a QueryError now."""
    from geobridge.records import read_manifest
    from geobridge.retrieval.gallery import Gallery, QueryError

    gallery = Gallery.load(gallery_dir)
    image = read_manifest(tiny_world_dir)[0].path("satellite")
    with pytest.raises(QueryError, match="image view"):
        gallery.search(images=[image], view="text")


async def _call(
    app, scope_extra: dict, chunks: list[tuple[float, bytes]], complete: bool = True
) -> tuple[int, dict]:
    """Drive an ASGI app by hand: the body arrives in ``chunks`` (delay before each, bytes); an
    incomplete body is followed by silence."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/locate",
        "headers": [(b"content-type", b"application/json")],
        "client": ("10.0.0.1", 1234),
        "query_string": b"",
        "http_version": "1.1",
        "scheme": "http",
        "root_path": "",
        "raw_path": b"/locate",
        "server": ("127.0.0.1", 80),
        **scope_extra,
    }
    pending = list(chunks)
    sent: list[dict] = []

    async def receive():
        if not pending:
            await asyncio.sleep(3600)  # the client never sends more
        delay, data = pending.pop(0)
        await asyncio.sleep(delay)
        return {"type": "http.request", "body": data, "more_body": bool(pending) or not complete}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body)


def test_a_stalled_body_is_cut_off_with_a_408(gallery_dir):
    app = create_app(gallery_dir, client_limits=ClientLimits(body_timeout_s=0.3))
    stalled = _call(app, {}, [(0.0, b'{"text": ')], complete=False)
    status, body = asyncio.run(asyncio.wait_for(stalled, timeout=10))
    assert status == 408 and body["error"] == "body_timeout"


def test_a_client_with_too_many_requests_in_progress_gets_429_and_others_go_on():
    """Slow requests of one address hold its slots; its next one is refused, another address is served."""
    release = asyncio.Event()

    async def slow_app(scope, receive, send):
        await receive()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"ok": true}'})

    guard = ClientGuard(slow_app, ClientLimits(max_per_client=2))

    async def scenario():
        held = [asyncio.create_task(_call(guard, {}, [(0.0, b"{}")])) for _ in range(2)]
        await asyncio.sleep(0.05)
        refused = await _call(guard, {}, [(0.0, b"{}")])
        other = asyncio.create_task(_call(guard, {"client": ("10.0.0.2", 1)}, [(0.0, b"{}")]))
        health = asyncio.create_task(_call(guard, {"path": "/health"}, [(0.0, b"")]))
        await asyncio.sleep(0.05)
        release.set()
        return refused, await asyncio.gather(*held, other, health)

    refused, served = asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert refused[0] == 429 and refused[1]["error"] == "too_many_requests"
    assert [status for status, _ in served] == [200, 200, 200, 200]
    assert guard.in_progress == {}


def test_decodes_run_in_a_bounded_pool(gallery_dir, monkeypatch):
    """At most ``concurrent_decodes`` uploads are decoded at once, however many arrive together."""
    import threading
    import time

    from geobridge.serve import app as app_module

    running, peak, lock = [0], [0], threading.Lock()
    real = app_module.decode_image

    def counting(*args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(app_module, "decode_image", counting)
    app = create_app(gallery_dir, concurrent_decodes=2)
    data = png()

    async def many():
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await asyncio.gather(
                *(
                    http.post(
                        "/locate", files={"image": ("q.png", data, "image/png")}, data={"view": "satellite"}
                    )
                    for _ in range(8)
                )
            )

    with TestClient(app):  # start-up
        responses = asyncio.run(many())
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert peak[0] == 2
