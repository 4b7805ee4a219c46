"""Providers of the dataset builder against loopback fake servers speaking each service's
documented response shape, and the local providers (catalogue, tile folder, MBTiles)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_build_fakes import HTML_ERROR, FakeServer, json_reply, png_bytes

from geobridge.builder.config import HttpSettings
from geobridge.builder.providers.base import ProviderError
from geobridge.builder.providers.google_streetview import GoogleStreetView
from geobridge.builder.providers.http import HttpClient, redact
from geobridge.builder.providers.local import LocalPanoramaCatalogue, MBTiles, XYZDirectory, write_mbtiles
from geobridge.builder.providers.mapillary import Mapillary
from geobridge.builder.providers.openaerialmap import OpenAerialMapCatalogue
from geobridge.builder.providers.xyz import TileMosaicSatellite, XYZUrlTiles, tile_fractions
from geobridge.geo import Footprint, haversine_m, offset_latlon

FAST = HttpSettings(requests_per_second=1000, retries=2, backoff_s=0.01, timeout_s=5)
LAT, LON = 47.3770, 8.5040


def client(tmp_path, cache=True) -> HttpClient:
    return HttpClient(FAST, cache_dir=tmp_path / "cache" if cache else None)


def test_http_client_retries_with_backoff_then_caches(tmp_path):
    calls = {"n": 0}

    def flaky(path, query, headers, body):
        calls["n"] += 1
        return (
            (503, "text/plain", b"busy")
            if calls["n"] <= 2
            else (200, "image/png", png_bytes(np.zeros((4, 4, 3), np.uint8)))
        )

    with FakeServer() as server:
        server.routes["/img.png"] = flaky
        http = client(tmp_path)
        first = http.get(f"{server.url}/img.png", expect="image")
        assert calls["n"] == 3 and not first.from_cache
        second = http.get(f"{server.url}/img.png", expect="image")
        assert second.from_cache and second.body == first.body and calls["n"] == 3
        calls["n"] = -100  # always 503 now
        with pytest.raises(ProviderError, match=r"HTTP 503 .*gave up after 3 attempts"):
            http.get(f"{server.url}/img.png?other=1", expect="image")


def test_http_client_refuses_html_instead_of_an_image_and_hides_keys(tmp_path):
    with FakeServer() as server:
        server.routes["/tile.png"] = lambda *a: (200, "text/html", HTML_ERROR)
        server.routes["/denied"] = lambda *a: (403, "text/plain", b"forbidden")
        http = client(tmp_path)
        with pytest.raises(ProviderError) as err:
            http.get(f"{server.url}/tile.png", params={"key": "SECRET123"}, expect="image")
        assert "HTML page instead of an image" in str(err.value)
        assert "SECRET123" not in str(err.value) and "key=***" in str(err.value)
        with pytest.raises(ProviderError, match="HTTP 403") as err:
            http.get(f"{server.url}/denied", params={"access_token": "SECRET123"})
        assert "SECRET123" not in str(err.value)
        assert len(server.requests_to("/denied")) == 1  # a 403 is not retried
        # nothing refused was cached
        assert not any((tmp_path / "cache").rglob("*.body"))
    assert redact("http://h/x?key=abc&z=1") == "http://h/x?key=***&z=1"


def test_http_client_injected_sleep_retry_statuses_cap_and_refusal_reason(tmp_path):
    sleeps: list[float] = []
    with FakeServer() as server:
        server.routes["/slow"] = lambda *a: (408, "text/plain", b"request timeout")
        server.routes["/denied"] = lambda *a: (
            401,
            "application/json",
            b'{"error": "token SECRETTOKEN123 is revoked"}',
        )
        default = HttpClient(FAST, cache_dir=None, sleep=sleeps.append)
        with pytest.raises(ProviderError, match=r"HTTP 408 from .*/slow: request timeout"):
            default.get(f"{server.url}/slow")
        assert len(server.requests_to("/slow")) == 1 and sleeps == []  # 408 is not a default retry status
        custom = HttpClient(
            FAST, cache_dir=None, sleep=sleeps.append, retry_statuses={408}, max_backoff_s=0.015
        )
        with pytest.raises(ProviderError, match=r"HTTP 408 from .*/slow \(gave up after 3 attempts\)"):
            custom.get(f"{server.url}/slow")
        assert len(server.requests_to("/slow")) == 4
        assert sleeps == [
            0.01,
            0.015,
        ]  # back-off 0.01 s then 0.02 s capped at 0.015 s, through the injected sleep
        with pytest.raises(ProviderError) as err:
            default.get(f"{server.url}/denied", headers={"Authorization": "Bearer SECRETTOKEN123"})
        assert "HTTP 401" in str(err.value) and "is revoked" in str(err.value)
        assert "SECRETTOKEN123" not in str(err.value) and "token *** is revoked" in str(err.value)
        with pytest.raises(ProviderError, match="HTTP 401") as err:
            default.get(f"{server.url}/denied?access_token=SECRETTOKEN123")
        assert "SECRETTOKEN123" not in str(err.value) and "token *** is revoked" in str(err.value)


def test_openaerialmap_catalogue_search_and_broken_results(tmp_path):
    results = [
        {
            "_id": "a1",
            "uuid": "http://example/a1.tif",
            "title": "flight A",
            "bbox": [8.50, 47.37, 8.51, 47.38],
            "gsd": 0.05,
            "platform": "uav",
            "properties": {"thumbnail": "http://example/a1.png"},
        },
        {"_id": "b2", "title": "no url", "bbox": [8.5, 47.37, 8.51, 47.38], "platform": "uav"},
        {"_id": "c3", "uuid": "http://example/c3.tif", "bbox": "broken", "platform": "uav"},
        {
            "_id": "d4",
            "uuid": "http://example/d4.tif",
            "bbox": [8.5, 47.37, 8.51, 47.38],
            "platform": "satellite",
        },
    ]
    with FakeServer() as server:
        server.routes["/meta"] = lambda p, q, h, b: json_reply(
            {"meta": {"found": len(results), "limit": 100, "page": 1}, "results": results}
        )
        catalogue = OpenAerialMapCatalogue(client(tmp_path), base_url=server.url)
        found = catalogue.search(Footprint(8.5, 47.37, 8.51, 47.38))
        query = server.requests_to("/meta")[0]["query"]
        assert query["bbox"] == "8.5,47.37,8.51,47.38" and query["platform"] == "uav"
    assert [r.id for r in found.records] == ["a1"]
    assert found.records[0].gsd_m == 0.05 and found.records[0].footprint.contains(47.375, 8.505)
    assert len(found.skipped) == 2
    assert any("uuid" in s for s in found.skipped) and any("bbox" in s for s in found.skipped)


def test_google_streetview_metadata_then_image(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_GSV_KEY", "SECRET-GSV")
    fp = Footprint.around(LAT, LON, 100)
    p_lat, p_lon = offset_latlon(LAT, LON, 12.0, -7.0)

    def metadata(path, query, headers, body):
        lat, lon = (float(v) for v in query["location"].split(","))
        if lat > LAT:  # northern probes find nothing
            return json_reply({"status": "ZERO_RESULTS"})
        return json_reply(
            {
                "status": "OK",
                "pano_id": "PANO_1",
                "location": {"lat": float(p_lat), "lng": float(p_lon)},
                "date": "2021-06",
            }
        )

    def image(path, query, headers, body):
        heading = int(query["heading"])
        return (
            200,
            "image/jpeg" if False else "image/png",
            png_bytes(np.full((32, 32, 3), heading // 90 * 60, np.uint8)),
        )

    with FakeServer() as server:
        server.routes["/streetview/metadata"] = metadata
        server.routes["/streetview"] = image
        gsv = GoogleStreetView(
            client(tmp_path), key_env="FAKE_GSV_KEY", base_url=server.url, grid_m=50, view_px=32
        )
        found = gsv.search(fp)
        assert [p.id for p in found.panoramas] == ["PANO_1"]  # 2 southern probes, one panorama
        assert len(server.requests_to("/streetview/metadata")) == 4
        assert all(r["query"]["key"] == "SECRET-GSV" for r in server.log)
        data = gsv.fetch_image(found.panoramas[0])
        headings = sorted(
            int(r["query"]["heading"])
            for r in server.requests_to("/streetview")
            if r["path"] == "/streetview"
        )
        assert headings == [0, 90, 180, 270]
    from geobridge.builder.providers.images import decode_rgb

    pano = decode_rgb(data)
    assert pano.shape == (32, 128, 3)
    assert [int(pano[0, 16 + 32 * i, 0]) for i in range(4)] == [0, 60, 120, 180]  # north first, clockwise
    monkeypatch.delenv("FAKE_GSV_KEY")
    with pytest.raises(ProviderError, match="FAKE_GSV_KEY is not set"):
        GoogleStreetView(client(tmp_path), key_env="FAKE_GSV_KEY")


def test_mapillary_bbox_search_flags_panoramas_and_uses_a_header_token(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MLY", "MLY|secret")
    fp = Footprint.around(LAT, LON, 100)
    with FakeServer() as server:
        thumb = f"{server.url}/thumbs/1.png"
        server.routes["/images"] = lambda p, q, h, b: json_reply(
            {
                "data": [
                    {
                        "id": "1",
                        "geometry": {"type": "Point", "coordinates": [LON, LAT]},
                        "is_pano": True,
                        "compass_angle": 370.0,
                        "thumb_2048_url": thumb,
                    },
                    {
                        "id": "2",
                        "geometry": {"type": "Point", "coordinates": [LON, LAT]},
                        "is_pano": False,
                        "thumb_2048_url": thumb,
                    },
                    {"id": "3", "is_pano": True},
                ]
            }
        )
        server.prefix_routes.append(
            ("/thumbs/", lambda *a: (200, "image/png", png_bytes(np.zeros((8, 16, 3), np.uint8))))
        )
        mly = Mapillary(client(tmp_path), key_env="FAKE_MLY", base_url=server.url)
        found = mly.search(fp)
        request = server.requests_to("/images")[0]
        assert request["headers"]["Authorization"] == "OAuth MLY|secret"
        assert "secret" not in str(request["query"]) and request["query"]["is_pano"] == "true"
        w, s, e, n = (float(v) for v in request["query"]["bbox"].split(","))
        assert Footprint(w, s, e, n).contains(LAT, LON)
        assert [p.id for p in found.panoramas] == ["1"] and found.panoramas[0].heading_deg == pytest.approx(
            10.0
        )
        assert len(found.skipped) == 2
        assert mly.fetch_image(found.panoramas[0]).startswith(b"\x89PNG")


def _tile_with_grid(z, x, y) -> np.ndarray:
    """A tile whose pixels encode their global Web Mercator pixel position (for centring checks)."""
    img = np.zeros((256, 256, 3), np.uint8)
    gx, gy = x * 256 + np.arange(256), y * 256 + np.arange(256)
    img[..., 0] = (gx % 256)[None, :]
    img[..., 1] = (gy % 256)[:, None]
    return img


def test_xyz_mosaic_is_centred_on_the_point_and_html_tiles_are_refused(tmp_path):
    zoom = 19
    cx, cy = tile_fractions(np.array(LAT), np.array(LON), zoom)
    bad_tile = (int(cx) + 3, int(cy))

    def tile(path, query, headers, body):
        z, x, y = (int(v) for v in path.removesuffix(".png").split("/")[-3:])
        if (x, y) == bad_tile:
            return 200, "text/html", HTML_ERROR
        return 200, "image/png", png_bytes(_tile_with_grid(z, x, y))

    with FakeServer() as server:
        server.prefix_routes.append(("/tiles/", tile))
        sat = TileMosaicSatellite(
            XYZUrlTiles(server.url + "/tiles/{z}/{x}/{y}.png", client(tmp_path)), zoom=zoom
        )
        image = sat.fetch(LAT, LON, size_m=60.0, size_px=64)
        # the centre pixel encodes the global mercator pixel of (LAT, LON)
        centre = image[31:33, 31:33].astype(float).mean(axis=(0, 1))
        assert abs(centre[0] - (cx * 256) % 256) < 2.5 and abs(centre[1] - (cy * 256) % 256) < 2.5
        east_lat, east_lon = offset_latlon(LAT, LON, 3 * 256 * 0.2 + 20, 0.0)  # reaches the HTML tile
        with pytest.raises(ProviderError, match="HTML page instead of an image"):
            sat.fetch(float(east_lat), float(east_lon), size_m=60.0, size_px=64)


def test_local_tile_folder_and_mbtiles_agree(tmp_path):
    zoom = 18
    cx, cy = (int(v) for v in tile_fractions(np.array(LAT), np.array(LON), zoom))
    tiles = {
        (zoom, x, y): png_bytes(_tile_with_grid(zoom, x, y))
        for x in range(cx - 1, cx + 2)
        for y in range(cy - 1, cy + 2)
    }
    for (z, x, y), data in tiles.items():
        (tmp_path / "xyz" / str(z) / str(x)).mkdir(parents=True, exist_ok=True)
        (tmp_path / "xyz" / str(z) / str(x) / f"{y}.png").write_bytes(data)
    (tmp_path / "xyz" / str(zoom) / str(cx) / f"{cy}.png").write_bytes(tiles[(zoom, cx, cy)])
    write_mbtiles(tmp_path / "t.mbtiles", tiles)
    from_dir = TileMosaicSatellite(XYZDirectory(tmp_path / "xyz"), zoom).fetch(LAT, LON, 80.0, 48)
    from_mb = TileMosaicSatellite(MBTiles(tmp_path / "t.mbtiles"), zoom).fetch(LAT, LON, 80.0, 48)
    assert np.array_equal(from_dir, from_mb)
    with pytest.raises(ProviderError, match="missing"):
        MBTiles(tmp_path / "t.mbtiles").get_tile(zoom, cx + 5, cy)
    with pytest.raises(ProviderError, match="missing"):
        XYZDirectory(tmp_path / "xyz").get_tile(zoom, cx + 5, cy)
    (tmp_path / "bad.mbtiles").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(ProviderError, match="not an MBTiles"):
        MBTiles(tmp_path / "bad.mbtiles")


def test_local_catalogue_skips_broken_rows_with_reasons(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "ok.png").write_bytes(png_bytes(np.zeros((8, 16, 3), np.uint8)))
    (tmp_path / "p" / "fake.png").write_bytes(HTML_ERROR)
    (tmp_path / "cat.csv").write_text(
        "id,lat,lon,heading,path\n"
        f"a,{LAT},{LON},90,p/ok.png\n"
        f"b,not-a-number,{LON},0,p/ok.png\n"
        f"c,{LAT},{LON},,\n"
        f"a,{LAT},{LON},0,p/ok.png\n"
        f"d,95.0,{LON},0,p/ok.png\n"
        f"e,{LAT},{LON},0,p/fake.png\n"
        f"f,{LAT + 0.01},{LON},0,p/missing.png\n"
    )
    cat = LocalPanoramaCatalogue(tmp_path / "cat.csv")
    assert [p.id for p in cat.panoramas] == ["a", "e", "f"]
    assert len(cat.broken_rows) == 4
    assert any("row 2" in r and "could not convert" in r for r in cat.broken_rows)
    assert any("duplicate id 'a'" in r for r in cat.broken_rows)
    assert any("out of range" in r for r in cat.broken_rows)
    found = cat.search(Footprint.around(LAT, LON, 50))
    assert [p.id for p in found.panoramas] == ["a", "e"] and found.skipped == cat.broken_rows
    assert cat.fetch_image(found.panoramas[0]).startswith(b"\x89PNG")
    with pytest.raises(ProviderError, match="not an image"):
        cat.fetch_image(found.panoramas[1])
    with pytest.raises(ProviderError, match="not found"):
        cat.fetch_image(cat.panoramas[2])
    assert haversine_m(LAT, LON, cat.panoramas[2].lat, LON) > 1000
    assert not math.isnan(cat.panoramas[0].heading_deg)


def test_pipeline_stage1_downloads_openaerialmap_orthomosaics(tmp_path):
    """Seeds from orthomosaics found in the (fake) OpenAerialMap catalogue; a broken download is skipped."""
    from test_build_stages import write_marked_geotiff

    from geobridge.builder.config import parse_build_config
    from geobridge.builder.pipeline import Build

    tif = write_marked_geotiff(tmp_path / "src.tif", "EPSG:32632", 0.5, size=400).read_bytes()
    with FakeServer() as server:
        results = [
            {
                "_id": "good",
                "uuid": f"{server.url}/files/good.tif",
                "bbox": [8.50, 47.37, 8.51, 47.38],
                "platform": "uav",
            },
            {
                "_id": "html",
                "uuid": f"{server.url}/files/html.tif",
                "bbox": [8.50, 47.37, 8.51, 47.38],
                "platform": "uav",
            },
        ]
        server.routes["/meta"] = lambda *a: json_reply({"meta": {"found": 2}, "results": results})
        server.routes["/files/good.tif"] = lambda *a: (200, "image/tiff", tif)
        server.routes["/files/html.tif"] = lambda *a: (200, "text/html", HTML_ERROR)
        cfg = parse_build_config(
            {
                "out": str(tmp_path / "out"),
                "openaerialmap": {"bbox": [8.49, 47.36, 8.52, 47.39], "base_url": server.url},
                "panoramas": {"kind": "local", "catalogue": str(tmp_path / "none.csv")},
                "satellite": {"kind": "xyz-dir", "path": str(tmp_path)},
                "seeds": {"window_m": 100, "stride_m": 100},
                "http": {"requests_per_second": 1000, "retries": 0},
            }
        )
        build = Build(cfg, progress=False)
        summary = build._stage_seeds({})
    assert summary["seeds"] == 4  # the 200 m x 200 m download, 100 m windows
    assert [s["item"] for s in summary["orthomosaics_skipped"]] == ["html"]
    assert "not a GeoTIFF: server returned an HTML page" in summary["orthomosaics_skipped"][0]["reason"]
    assert all(s.orthomosaic.endswith("good.tif") for s in build.seeds())
