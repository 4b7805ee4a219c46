"""The HTTP service: `POST /locate`, `GET /health`, `GET /gallery`, thumbnails, map tiles, the web page.

``create_app(gallery_dir, model=None)`` returns a FastAPI app that searches one gallery.
Every refusal is a JSON body ``{"error": code, "detail": message}`` with a 4xx status, and the
service keeps serving afterwards. Uploads are read with a byte limit into memory only; gallery
images are served by gallery id (never by a path from the request).
"""

from __future__ import annotations

import functools
import io
import json
import os
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from geobridge.images import ImageError, open_image
from geobridge.retrieval.gallery import QueryError
from geobridge.serve.guard import BodyTimeout, ClientGuard, ClientLimits
from geobridge.serve.holder import GalleryHolder, GalleryUnavailable
from geobridge.serve.tiles import Footprints, TileRenderer
from geobridge.serve.uploads import (
    UploadError,
    UploadLimits,
    check_content_length,
    decode_image,
    read_limited,
    release_memory,
)

STATIC_DIR = Path(__file__).parent / "static"
MAX_K = 100
THUMBNAIL_PX = 160
MAP_POINTS_LIMIT = 20_000
#: Searches run at once. The model already uses every core for one batch; running more at once
#: only makes the threads fight over the cores (measured in benchmarks/serve_load.md).
DEFAULT_CONCURRENT_SEARCHES = 1
#: Uploads decoded at once: each may hold up to ``max_pixels`` x 3 bytes, so a burst of large
#: images is decoded a few at a time instead of all at once.
DEFAULT_CONCURRENT_DECODES = min(4, os.cpu_count() or 1)
RELEASE_AFTER_PIXELS = 4_000_000  # after a query image this large, hand freed memory back to the OS

LOCATE_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image", "view"],
                    "properties": {
                        "image": {
                            "type": "string",
                            "format": "binary",
                            "description": "PNG/JPEG query image (<= 20 MB)",
                        },
                        "view": {"type": "string", "enum": ["drone", "street", "satellite", "map", "ground"]},
                        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 5},
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {
                        "text": {"type": "string", "description": "a description of the place"},
                        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 5},
                    },
                }
            },
        },
    },
    "responses": {
        "400": {"description": "bad input (corrupt image, empty text, unknown view, bad k)"},
        "409": {"description": "the gallery is corrupt or does not match the model"},
        "413": {"description": "upload too large (bytes or pixels)"},
        "415": {"description": "not an image / unsupported content type"},
    },
}


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def create_app(
    gallery_dir: str | Path,
    model: Any = None,
    limits: UploadLimits | None = None,
    concurrent_searches: int = DEFAULT_CONCURRENT_SEARCHES,
    client_limits: ClientLimits | None = None,
    concurrent_decodes: int = DEFAULT_CONCURRENT_DECODES,
) -> FastAPI:
    """A FastAPI app serving ``gallery_dir`` (with ``model`` if given, else the gallery's own).

    Requests are accepted concurrently; at most ``concurrent_searches`` model + index searches and
    ``concurrent_decodes`` upload decodes run at once (in worker threads), the others wait their
    turn. ``client_limits`` bound each client (body deadline, requests in progress).
    """
    holder = GalleryHolder(gallery_dir, model=model)
    limits = limits or UploadLimits()
    search_slots = anyio.CapacityLimiter(concurrent_searches)
    decode_slots = anyio.CapacityLimiter(concurrent_decodes)

    async def run_search(gallery, **kwargs: Any):
        return await anyio.to_thread.run_sync(
            functools.partial(gallery.search, **kwargs), limiter=search_slots
        )

    tile_source: dict[str, Any] = {}  # the gallery the tiles are drawn from, and its renderer

    def renderer_of(gallery) -> TileRenderer:
        if tile_source.get("gallery") is not gallery:  # a reloaded gallery: new footprints
            frame = gallery.metadata
            sizes = frame["size_m"].to_numpy() if "size_m" in frame else None
            paths = [None if p is None else str(p) for p in frame["path"]]
            footprints = Footprints.of(frame["lat"].to_numpy(), frame["lon"].to_numpy(), sizes, paths)
            tile_source.update(gallery=gallery, renderer=TileRenderer(footprints))
        return tile_source["renderer"]

    app = FastAPI(
        title="geobridge locate",
        description="Where was this taken? Drone, street, satellite or map images, or a text description, "
        "ranked against a geo-tagged gallery.",
        docs_url=None,  # the stock Swagger page loads scripts from a CDN; /docs is served offline below
        redoc_url=None,
    )
    app.state.holder = holder
    app.state.limits = limits
    app.add_middleware(ClientGuard, limits=client_limits or ClientLimits())

    @app.exception_handler(BodyTimeout)
    async def _body_timeout(_: Request, err: BodyTimeout) -> JSONResponse:
        return error_response(408, "body_timeout", str(err))

    @app.exception_handler(UploadError)
    async def _upload_error(_: Request, err: UploadError) -> JSONResponse:
        return error_response(err.status, err.code, err.message)

    @app.exception_handler(QueryError)
    async def _query_error(_: Request, err: QueryError) -> JSONResponse:
        return error_response(400, "bad_query", str(err))

    @app.exception_handler(GalleryUnavailable)
    async def _gallery_unavailable(_: Request, err: GalleryUnavailable) -> JSONResponse:
        return error_response(409, err.code, err.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        parts = [
            "{}: {}".format(".".join(str(p) for p in e.get("loc", ())), e.get("msg")) for e in err.errors()
        ]
        return error_response(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        response = error_response(err.status_code, "http_error", str(err.detail))
        response.headers.update(err.headers or {})  # e.g. Allow on 405
        return response

    @app.head("/health", include_in_schema=False)  # monitors probe with HEAD
    @app.get("/health", summary="Is the service ready to answer?")
    def health() -> JSONResponse:
        try:
            gallery = holder.get()
        except GalleryUnavailable as err:
            return JSONResponse(
                {"status": "error", "error": err.code, "detail": err.message}, status_code=503
            )
        return JSONResponse({"status": "ok", "gallery_size": len(gallery)})

    @app.get("/gallery", summary="What the gallery holds: size, view, index, model, query views")
    def gallery_info() -> dict[str, Any]:
        return holder.get().summary()

    @app.get("/gallery/points", summary="Gallery coordinates for the map (a regular subsample when large)")
    def gallery_points(limit: int = MAP_POINTS_LIMIT) -> dict[str, Any]:
        gallery = holder.get()
        limit = max(1, min(int(limit), MAP_POINTS_LIMIT))
        step = max(1, -(-len(gallery) // limit))
        frame = gallery.metadata.iloc[::step]
        return {
            "total": len(gallery),
            "ids": frame["id"].astype(str).tolist(),
            "lat": frame["lat"].round(7).tolist(),
            "lon": frame["lon"].round(7).tolist(),
        }

    @app.get(
        "/gallery/{entry_id:path}/image", summary="A gallery entry's image (PNG thumbnail), by gallery id"
    )
    def gallery_image(entry_id: str) -> Response:
        gallery = holder.get()
        path = gallery.path_of(entry_id)
        if path is None:
            return error_response(404, "unknown_id", f"no gallery entry with id {entry_id!r}")
        try:
            data = _thumbnail(path)
        except ImageError as err:  # missing, unreadable, over the pixel budget
            return error_response(
                404, "image_unavailable", f"the image of {entry_id!r} cannot be read: {err}"
            )
        return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/tiles/{z}/{x}/{y}.png", summary="The gallery's own images as 256 px Web Mercator map tiles")
    async def tile(z: int, x: int, y: int) -> Response:
        renderer = renderer_of(holder.get())
        data = await anyio.to_thread.run_sync(renderer.tile, z, x, y, limiter=decode_slots)
        return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.post(
        "/locate",
        summary="Locate an image (multipart: image, view, k) or a text (JSON: text, k)",
        openapi_extra=LOCATE_OPENAPI,
    )
    async def locate(request: Request) -> JSONResponse:
        check_content_length(request.headers.get("content-length"), limits)
        body = await read_limited(request.stream(), limits)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        gallery = holder.get()
        if content_type == "application/json":
            text, k = _parse_json_query(body)
            results = await run_search(gallery, text=text, k=k)
            return JSONResponse(_response(results[0], gallery))
        if content_type == "multipart/form-data":
            image, view, k, name = await _parse_multipart(request, body, limits)
            query_view = gallery.parse_query_view(view, image=True)  # before decoding anything
            pil = await anyio.to_thread.run_sync(
                functools.partial(decode_image, image, limits, name=name), limiter=decode_slots
            )
            del body, image
            pixels = pil.width * pil.height
            results = await run_search(gallery, images=[pil], view=query_view, k=k)
            del pil
            if pixels >= RELEASE_AFTER_PIXELS:
                await anyio.to_thread.run_sync(release_memory, limiter=decode_slots)
            return JSONResponse(_response(results[0], gallery, query_name=name))
        raise UploadError(
            415,
            "unsupported_content_type",
            'send multipart/form-data (image, view, k) or application/json ({"text": ..., "k": ...})',
        )

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _parse_k(value: Any) -> int:
    try:
        k = int(value)
        if isinstance(value, bool) or str(value).strip() != str(k):
            raise ValueError
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON 1e400 reads as infinity
        raise QueryError(f"k must be an integer between 1 and {MAX_K}, got {value!r}") from None
    if not 1 <= k <= MAX_K:
        raise QueryError(f"k must be between 1 and {MAX_K}, got {k}")
    return k


def _parse_json_query(body: bytes) -> tuple[str, int]:
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise UploadError(
            400, "bad_json", 'the body is not valid JSON: send {"text": "...", "k": 5}'
        ) from None
    except RecursionError:
        raise UploadError(
            400, "bad_json", 'the JSON is nested too deeply: send {"text": "...", "k": 5}'
        ) from None
    if not isinstance(payload, dict) or "text" not in payload:
        raise UploadError(400, "bad_json", 'send a JSON object {"text": "a description", "k": 5}')
    unknown = sorted(set(payload) - {"text", "k"})
    if unknown:
        raise UploadError(400, "bad_json", f"unknown field(s) {', '.join(unknown)}: expected text and k")
    text = payload["text"]
    if not isinstance(text, str):
        raise QueryError("text must be a string")
    return text, _parse_k(payload.get("k", 5))


async def _parse_multipart(
    request: Request, body: bytes, limits: UploadLimits
) -> tuple[bytes, str, int, str]:
    """Parse the already size-checked body; file parts are spooled to memory / the temp directory."""

    async def replay() -> dict[str, Any]:
        nonlocal body
        chunk, body = body, b""
        return {"type": "http.request", "body": chunk, "more_body": False}

    replayed = Request(request.scope, receive=replay)
    try:
        form = await replayed.form(max_files=1, max_fields=8, max_part_size=limits.max_bytes)
    except Exception as err:  # malformed multipart, too many parts
        raise UploadError(
            400, "bad_multipart", f"cannot parse the form: {getattr(err, 'detail', err)}"
        ) from None
    try:
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise UploadError(400, "missing_image", "the form needs a file field 'image' (and 'view')")
        view = form.get("view")
        if not isinstance(view, str) or not view.strip():
            raise UploadError(
                400, "missing_view", "the form needs a field 'view': drone, street, satellite, map or ground"
            )
        k = _parse_k(form.get("k", "5"))
        data = await upload.read()
        return data, view.strip(), k, upload.filename or "upload"
    finally:
        await form.close()


def _response(result, gallery, query_name: str | None = None) -> dict[str, Any]:
    payload = result.to_dict()
    if query_name is not None:
        payload["query"] = query_name
    payload.pop("true_lat", None)
    payload.pop("true_lon", None)
    for match in payload["matches"]:
        match.pop("path", None)  # server paths stay private; images are served by id
        match.pop("error_m", None)
        match["image_url"] = f"/gallery/{match['id']}/image"
    if payload.get("estimate") is not None:
        payload["estimate"].pop("error_m", None)
    payload["gallery"] = {"size": len(gallery), "view": gallery.info.view}
    return payload


def _thumbnail(path: Path) -> bytes:
    out = io.BytesIO()
    open_image(path, max_side=THUMBNAIL_PX).save(out, format="PNG")
    return out.getvalue()
