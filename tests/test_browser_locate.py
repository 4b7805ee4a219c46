"""End to end in a real browser: Debian's Chromium, driven by Playwright, uses the web page.

The service runs under uvicorn on a free loopback port, serving a gallery built from the tiny
embedded world (``tiny_world_dir``) with a randomly initialised tiny model. Because that model is
untrained, the query is a satellite tile of the world searched among the satellite gallery: the
exact image is in the gallery, so its location must be in the top 5 whatever the weights (a
cross-view query would need a trained model, which `make demo` produces but tests cannot wait for).
A screenshot of the answered page is saved to ``test-artifacts/browser_locate.png``.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from geobridge.records import read_manifest
from geobridge.retrieval.gallery import Gallery

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(tiny_world_dir, tmp_path_factory):
    import uvicorn

    from geobridge.models import create_model
    from geobridge.serve.app import create_app

    torch.manual_seed(0)
    model_dir = tmp_path_factory.mktemp("browser_model") / "tiny"
    model = create_model("tiny")
    model.save_pretrained(model_dir)
    gallery_dir = tmp_path_factory.mktemp("browser_gallery") / "gallery"
    Gallery.build(model, read_manifest(tiny_world_dir), "satellite", out=gallery_dir, model_path=model_dir, progress=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(gallery_dir), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server_url):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium, or `make browser`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(server_url + "/")
            page.wait_for_selector("#view-select option[value=satellite]", state="attached")
            yield page
        finally:
            browser.close()


def test_uploaded_satellite_tile_is_located_in_the_top_5(page, tiny_world_dir):
    query = read_manifest(tiny_world_dir, split="test")[0]
    assert "places" in page.inner_text("#gallery-summary")
    page.set_input_files("#image-input", str(query.path("satellite")))
    page.select_option("#view-select", "satellite")
    page.fill("#k-input", "5")
    page.click("#locate-button")
    page.wait_for_selector("body[data-state=done]")
    ids = page.eval_on_selector_all("#results li", "items => items.map(item => item.dataset.id)")
    assert len(ids) == 5
    assert query.id in ids, f"{query.id} not in the top 5 shown: {ids}"
    # The query is shown, the thumbnails have loaded, and the map has coloured result markers.
    assert page.is_visible("#query-preview")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#results img')].every(img => img.complete && img.naturalWidth > 0)"
    )
    best_marker_pixels = page.evaluate(
        """() => {
            const c = document.getElementById('map');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let red = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] > 170 && d[i + 1] < 80 && d[i + 2] < 80) red++;
            return red;
        }"""
    )
    assert best_marker_pixels > 50
    # The exact tile is in the gallery, so it is the best match, with its coordinates shown.
    assert ids[0] == query.id
    assert page.inner_text("#results li:first-child .coords") == f"{query.lat:.6f}, {query.lon:.6f}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_locate.png"), full_page=True)
    assert (ARTIFACTS / "browser_locate.png").stat().st_size > 10_000


def test_text_query_and_a_refused_upload_in_the_page(page, tmp_path):
    page.check("#mode-text")
    page.fill("#text-input", "a park beside the river with a footbridge")
    page.click("#locate-button")
    page.wait_for_selector("body[data-state=done]")
    assert page.locator("#results li").count() == 5
    assert "a park beside the river" in page.inner_text("#query-text")

    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is not an image")
    page.check("#mode-image")
    page.set_input_files("#image-input", str(not_an_image))
    page.click("#locate-button")
    page.wait_for_selector("body[data-state=error]")
    assert "not an image" in page.inner_text("#status")
    assert page.locator("#results li").count() == 0
