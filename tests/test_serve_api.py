"""The HTTP API: locate by image and text, gallery info, thumbnails by id, and every kind of bad input."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from geobridge.records import read_manifest
from geobridge.retrieval.gallery import Gallery
from geobridge.serve.app import create_app
from geobridge.serve.uploads import UploadLimits


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from geobridge.models import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("serve_model") / "tiny"
    create_model("tiny").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def gallery_dir(model_dir, tiny_world_dir, tmp_path_factory):
    from geobridge.models import load_model

    out = tmp_path_factory.mktemp("serve_gallery") / "gallery"
    Gallery.build(
        load_model(model_dir),
        read_manifest(tiny_world_dir),
        "satellite",
        out=out,
        model_path=model_dir,
        progress=False,
    )
    return out


@pytest.fixture(scope="module")
def client(gallery_dir):
    with TestClient(create_app(gallery_dir)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def query(tiny_world_dir):
    return read_manifest(tiny_world_dir, split="test")[1]


def post_image(client, data: bytes, view: str = "satellite", k: str = "5", name: str = "q.png"):
    return client.post("/locate", files={"image": (name, data, "image/png")}, data={"view": view, "k": k})


def assert_error(response, status: int, code: str, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert fragment in body["detail"], body


def test_health_gallery_and_points(client, tiny_world_dir):
    n = len(read_manifest(tiny_world_dir))
    assert client.get("/health").json() == {"status": "ok", "gallery_size": n}
    info = client.get("/gallery").json()
    assert info["size"] == n and info["view"] == "satellite" and info["index"] == "exact"
    assert info["model"]["name"] == "tiny" and "text" in info["query_views"]
    points = client.get("/gallery/points").json()
    assert points["total"] == n and len(points["lat"]) == len(points["lon"]) == len(points["ids"]) == n


def test_locate_image_finds_itself_and_thumbnails_are_served_by_id(client, query):
    response = post_image(client, query.path("satellite").read_bytes(), k="3")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == "q.png" and body["view"] == "satellite" and len(body["matches"]) == 3
    best = body["matches"][0]
    assert best["id"] == query.id and best["rank"] == 1
    assert best["lat"] == pytest.approx(query.lat) and best["lon"] == pytest.approx(query.lon)
    assert "path" not in best  # server paths are not disclosed
    thumb = client.get(best["image_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size[0] <= 160


def test_locate_text_json(client):
    response = client.post("/locate", json={"text": "a church on a square near the river", "k": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["view"] == "text" and [m["rank"] for m in body["matches"]] == [1, 2, 3, 4]


def test_no_file_can_be_read_by_path(client):
    assert_error(client.get("/gallery/nope/image"), 404, "unknown_id", "no gallery entry")
    for url in (
        "/gallery/..%2F..%2F..%2Fetc%2Fpasswd/image",
        "/gallery/%2Fetc%2Fpasswd/image",
        "/static/../../etc/passwd",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"root:" not in response.content


def test_page_and_offline_docs(client):
    page = client.get("/")
    assert page.status_code == 200
    for marker in (
        'id="image-input"',
        'id="view-select"',
        'id="text-input"',
        'id="results"',
        'id="map"',
        "/static/app.js",
    ):
        assert marker in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no external resources
    for asset in ("/static/app.js", "/static/style.css", "/static/docs.js"):
        content = client.get(asset).text
        assert "https://" not in content and "http://" not in content
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/docs.js" in docs.text
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/locate"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    assert {"/health", "/gallery", "/gallery/points"} <= set(spec["paths"])


def bomb_png() -> bytes:
    """A 1-bit 12000 x 12000 PNG: a few kB on disk, 144 M pixels once decoded."""
    out = io.BytesIO()
    Image.new("1", (12000, 12000)).save(out, format="PNG")
    return out.getvalue()


def test_bad_uploads_are_refused_and_the_service_keeps_serving(client, query):
    png = query.path("satellite").read_bytes()
    cases = [
        (post_image(client, b"GIF89a but not really an image at all"), 415, "not_an_image", "not an image"),
        (post_image(client, b"plain text"), 415, "not_an_image", "accepted: PNG"),
        (post_image(client, png[: len(png) // 2]), 400, "corrupt_image", "truncated"),
        (post_image(client, b""), 400, "empty_image", "empty"),
        (post_image(client, bomb_png()), 413, "too_many_pixels", "decompression bomb"),
        (post_image(client, png, view="sideways"), 400, "bad_query", "unknown view 'sideways'"),
        (post_image(client, png, view="ground"), 400, "bad_query", "cannot embed ground queries"),
        (post_image(client, png, k="0"), 400, "bad_query", "k must be between 1 and 100"),
        (post_image(client, png, k="many"), 400, "bad_query", "k must be an integer"),
        (
            client.post("/locate", data={"view": "drone"}, files={"other": ("x", b"1")}),
            400,
            "missing_image",
            "'image'",
        ),
        (client.post("/locate", json={"text": "   "}), 400, "bad_query", "empty"),
        (client.post("/locate", json={"text": "a park", "k": 500}), 400, "bad_query", "between 1 and 100"),
        (client.post("/locate", json={"query": "a park"}), 400, "bad_json", "text"),
        (
            client.post("/locate", content=b"{not json", headers={"content-type": "application/json"}),
            400,
            "bad_json",
            "not valid JSON",
        ),
        (
            client.post("/locate", content=b"hello", headers={"content-type": "text/plain"}),
            415,
            "unsupported_content_type",
            "multipart",
        ),
    ]
    for response, status, code, fragment in cases:
        assert_error(response, status, code, fragment)
    assert post_image(client, png).json()["matches"][0]["id"] == query.id


def test_oversized_uploads_are_refused_early(gallery_dir, query):
    chunk = b"\0" * (1024 * 1024)

    def two_hundred_megabytes():
        for _ in range(200):
            yield chunk

    with TestClient(create_app(gallery_dir)) as test_client:
        # Announced size over the limit: refused from the header.
        response = test_client.post(
            "/locate",
            content=b"x" * 10,
            headers={
                "content-type": "multipart/form-data; boundary=b",
                "content-length": str(200 * 1024 * 1024),
            },
        )
        assert_error(response, 413, "too_large", "at most 20 MB")
        # No Content-Length (chunked): the streaming limit stops reading after 20 MB.
        response = test_client.post(
            "/locate",
            content=two_hundred_megabytes(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert_error(response, 413, "too_large", "at most 20 MB")
    small = UploadLimits(max_bytes=1000)
    with TestClient(create_app(gallery_dir, limits=small)) as test_client:
        assert_error(post_image(test_client, query.path("satellite").read_bytes()), 413, "too_large", "MB")


def test_model_mismatch_is_a_409_and_health_says_so(gallery_dir):
    from geobridge.models import create_model

    torch.manual_seed(5)
    with TestClient(create_app(gallery_dir, model=create_model("tiny"))) as test_client:
        assert_error(
            test_client.post("/locate", json={"text": "a park"}), 409, "model_mismatch", "weights differ"
        )
        health = test_client.get("/health")
        assert health.status_code == 503 and health.json()["error"] == "model_mismatch"


def test_gallery_corrupted_while_serving_then_repaired(gallery_dir, tmp_path, query):
    live = tmp_path / "live"
    shutil.copytree(gallery_dir, live)
    original = (live / "index.npy").read_bytes()
    with TestClient(create_app(live)) as test_client:
        assert test_client.post("/locate", json={"text": "a park"}).status_code == 200
        damaged = bytearray(original)
        damaged[-10] ^= 0xFF
        (live / "index.npy").write_bytes(bytes(damaged))
        assert_error(test_client.post("/locate", json={"text": "a park"}), 409, "gallery_corrupt", "checksum")
        assert test_client.get("/health").status_code == 503
        (live / "index.npy").write_bytes(original)
        response = post_image(test_client, query.path("satellite").read_bytes())
        assert response.status_code == 200 and response.json()["matches"][0]["id"] == query.id
        assert test_client.get("/health").json()["status"] == "ok"


def test_streaming_limit_stops_reading_at_the_limit():
    import asyncio

    from geobridge.serve.uploads import UploadError, read_limited

    consumed = {"chunks": 0}

    async def body():
        for _ in range(200):  # 200 MB if read to the end
            consumed["chunks"] += 1
            yield b"\0" * (1024 * 1024)

    with pytest.raises(UploadError) as caught:
        asyncio.run(read_limited(body(), UploadLimits()))
    assert caught.value.status == 413
    assert consumed["chunks"] == 21  # stopped at the first chunk past 20 MB


def test_serve_command_refuses_a_bad_gallery_before_binding(gallery_dir, tmp_path):
    from typer.testing import CliRunner

    from geobridge.cli import app

    corrupt = tmp_path / "corrupt"
    shutil.copytree(gallery_dir, corrupt)
    (corrupt / "metadata.parquet").write_bytes(b"garbage")
    for folder, message in (
        (corrupt, "does not match its checksum"),
        (tmp_path / "none", "is not a gallery"),
    ):
        result = CliRunner().invoke(app, ["serve", "--gallery", str(folder), "--port", "1"])
        assert result.exit_code != 0
        assert result.stderr.startswith("error:") and message in result.stderr


def test_locate_returns_an_estimate_and_the_map_tiles_are_the_gallerys_own(client, query):
    body = post_image(client, query.path("satellite").read_bytes(), k="1").json()
    estimate = body["estimate"]
    assert set(estimate) == {"lat", "lon", "radius_m", "coverage"}  # no error_m: the truth stays private
    assert estimate["coverage"] is None and estimate["radius_m"] >= 0  # uncalibrated: the matches' spread
    assert len(body["matches"]) == 1  # k=1 still estimates from the top 5
    assert abs(estimate["lat"] - query.lat) < 0.01 and abs(estimate["lon"] - query.lon) < 0.01
    from geobridge.geo import latlon_to_tile

    x, y = latlon_to_tile(query.lat, query.lon, 18)
    tile = client.get(f"/tiles/18/{x}/{y}.png")
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
    alpha = np.asarray(Image.open(io.BytesIO(tile.content)).convert("RGBA"))[..., 3]
    assert (alpha > 0).mean() > 0.2  # the place's own satellite image is drawn there
    x0, y0 = latlon_to_tile(query.lat, query.lon, 3)
    for url in (f"/tiles/3/{x0}/{y0}.png", "/tiles/18/0/0.png", "/tiles/40/1/1.png"):
        empty = client.get(url)  # too far out, nothing there, no such zoom: a transparent tile
        assert empty.status_code == 200
        assert np.asarray(Image.open(io.BytesIO(empty.content)).convert("RGBA"))[..., 3].max() == 0
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 200 and favicon.headers["content-type"].startswith("image/svg")
    for asset in (
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/leaflet/leaflet.css",
        "/static/vendor/leaflet/LICENSE",
        "/static/favicon.svg",
    ):
        assert client.get(asset).status_code == 200, asset
