"""Command of the serve job: `geobridge serve --gallery G` runs the locate API and web page."""

from __future__ import annotations

from pathlib import Path

import typer

from geobridge.cli.errors import fail, require_extra
from geobridge.cli.run_options import checked_device, device_option

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
    app.command("serve")(serve)


def serve(
    gallery: Path = typer.Option(..., "--gallery", help="Gallery folder (from `geobridge gallery build`)."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; loopback by default (this machine only)."
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    max_upload_mb: int = typer.Option(20, "--max-upload-mb", min=1, help="Largest accepted upload."),
    body_timeout: float = typer.Option(
        15.0, "--body-timeout", min=1, help="Seconds a request body may take."
    ),
    max_per_client: int = typer.Option(
        32, "--max-per-client", min=1, help="Requests one client address may have in progress."
    ),
    device: str = device_option(),
) -> None:
    """Serve a gallery over HTTP: POST /locate, GET /health, GET /gallery, /docs, and a web page at /."""
    require_extra("serve", "geobridge serve")
    import uvicorn

    from geobridge.retrieval.gallery import Gallery, GalleryError
    from geobridge.serve.app import create_app
    from geobridge.serve.guard import ClientLimits
    from geobridge.serve.uploads import UploadLimits

    checked_device(device)
    try:
        opened = Gallery.load(
            gallery, device=device
        )  # checks the files and the model before binding the port
        _ = opened.model
    except GalleryError as err:
        raise fail(str(err)) from None
    if host not in LOOPBACK:
        typer.secho(
            f"warning: binding {host}: the service is reachable from other machines", err=True, fg="yellow"
        )
    app = create_app(
        gallery,
        model=opened.model,
        limits=UploadLimits(max_bytes=max_upload_mb * 1024 * 1024),
        client_limits=ClientLimits(body_timeout_s=body_timeout, max_per_client=max_per_client),
    )
    typer.echo(f"serving {len(opened)} {opened.info.view} places from {gallery} on http://{host}:{port}/")
    # connections are cheap while they wait; clients are bounded by the app (ClientGuard), so uvicorn's
    # own 503 limit is only a last resort; idle keep-alive connections and huge headers are cut short
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        limit_concurrency=4096,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=64 * 1024,
    )
