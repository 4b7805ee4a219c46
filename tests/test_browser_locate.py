"""End to end in a real browser: Debian's Chromium, driven by Playwright, uses the web page.

The service runs under uvicorn on a free loopback port, serving a gallery built from the tiny
embedded world (``tiny_world_dir``) with a randomly initialised tiny model. Because that model is
untrained, the query is a satellite tile of the world searched among the satellite gallery: the
exact image is in the gallery, so its location must be in the top 5 whatever the weights (a
cross-view query would need a trained model, which `make demo` produces but tests cannot wait for).
The gallery is calibrated on the test split's drone views, so a drone query's estimate states its
rate. Screenshots of the answered page (desktop, and a 360 x 740 phone) are saved to
``test-artifacts/`` (``docs/page_desktop.png`` and ``docs/page_phone.png`` are copies).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from geobridge.records import read_manifest
from geobridge.retrieval.calibration import calibrate_gallery
from geobridge.retrieval.gallery import Gallery
from geobridge.retrieval.sources import read_locations

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
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
    gallery = Gallery.build(
        model,
        read_locations(tiny_world_dir, "satellite"),
        "satellite",
        out=gallery_dir,
        model_path=model_dir,
        progress=False,
    )  # the world's 120 m footprints
    test = read_manifest(tiny_world_dir, split="test")
    gallery.set_calibration(calibrate_gallery(gallery, test, ["drone"], split="test"))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(gallery_dir), host="127.0.0.1", port=port, log_level="warning")
    )
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
def browser():
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium, or `make browser`)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, server_url: str, width: int, height: int):
    """The page in a fresh context of ``width`` x ``height``, once the gallery and its map are loaded."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(server_url + "/")
    page.wait_for_selector("#view-select option[value=satellite]", state="attached")
    page.wait_for_selector("body[data-map=ready]")
    return page


@pytest.fixture(scope="module")
def page(browser, server_url):
    page = open_page(browser, server_url, 1500, 1000)
    yield page
    page.context.close()


DRAWN_TILES = """() => [...document.querySelectorAll('#map img.leaflet-tile-loaded')].filter(img => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    if (!c.width) return false;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 64) if (d[i] > 0) return true;
    return false;
}).length"""


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
    # The map: the gallery's own imagery as tiles, the matches, the estimate with its radius.
    page.wait_for_function(DRAWN_TILES.replace("}).length", "}).length > 0"))
    assert page.locator("#map .match-marker").count() == 5
    assert page.locator("#map .match-marker.best").inner_text() == "1"
    assert page.is_visible("#map .estimate-marker")
    assert page.locator("#map path.estimate-circle").count() == 1
    assert "Estimate" in page.inner_text("#estimate") and "not calibrated" in page.inner_text("#estimate")
    # The exact tile is in the gallery, so it is the best match, with its coordinates shown.
    assert ids[0] == query.id
    assert page.inner_text("#results li:first-child .coords") == f"{query.lat:.6f}, {query.lon:.6f}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_locate.png"), full_page=True)
    assert (ARTIFACTS / "browser_locate.png").stat().st_size > 10_000
    page.screenshot(path=str(ARTIFACTS / "page_desktop.png"))


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
    assert not page.is_visible("#query-preview")  # no broken-image icon for the refused file
    assert (
        page.locator("#map .match-marker").count() == 0 and page.locator("#map .estimate-marker").count() == 0
    )


NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"
IDS_IN_ONE_PIECE = """() => [...document.querySelectorAll('#results .id')].every(el => {
    const lines = el.getClientRects().length;  // wraps happen only at the separators given <wbr>
    return el.scrollWidth <= el.clientWidth + 1 && lines >= 1;
})"""


def test_phone_sized_page_drone_query_with_a_calibrated_estimate(browser, server_url, tiny_world_dir):
    page = open_page(browser, server_url, 360, 740)
    try:
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        page.wait_for_function(DRAWN_TILES.replace("}).length", "}).length > 0"))
        query = read_manifest(tiny_world_dir, split="test")[1]
        page.set_input_files("#image-input", str(query.path("drone")))
        page.select_option("#view-select", "drone")
        page.click("#locate-button")
        page.wait_for_selector("body[data-state=done]")
        assert page.locator("#results li").count() == 5
        assert (
            page.is_visible("#map .estimate-marker")
            and page.locator("#map path.estimate-circle").count() == 1
        )
        assert "80% of held-out places fall inside" in page.inner_text("#estimate")
        assert page.evaluate(NO_SIDEWAYS_SCROLL), "the page scrolls sideways at 360 px"
        assert page.evaluate(IDS_IN_ONE_PIECE)
        box = page.locator("#map").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["height"] >= 300
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "page_phone.png"), full_page=True)
    finally:
        page.context.close()
