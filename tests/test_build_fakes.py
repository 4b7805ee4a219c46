"""Loopback fake servers shared by the dataset builder's tests (no tests of its own here).

`FakeServer` is an ``http.server`` on 127.0.0.1 (port 0) in a thread; each route is a function
``(query: dict, headers, body: bytes) -> (status, content_type, bytes)``; every request is logged.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np


def png_bytes(array: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(array[..., ::-1]))
    assert ok
    return data.tobytes()


HTML_ERROR = b"<!DOCTYPE html><html><body><h1>Quota exceeded</h1></body></html>"


class FakeServer:
    """A tiny loopback web server with programmable routes and a request log."""

    def __init__(self):
        self.routes: dict[str, callable] = {}
        self.prefix_routes: list[tuple[str, callable]] = []
        self.log: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _serve(self, body: bytes):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                server.log.append(
                    {
                        "method": self.command,
                        "path": parts.path,
                        "query": query,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                route = server.routes.get(parts.path)
                if route is None:
                    route = next((r for p, r in server.prefix_routes if parts.path.startswith(p)), None)
                if route is None:
                    status, ctype, data = 404, "text/plain", b"not found"
                else:
                    status, ctype, data = route(parts.path, query, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve(b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                self._serve(self.rfile.read(length))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests_to(self, path_prefix: str) -> list[dict]:
        return [r for r in self.log if r["path"].startswith(path_prefix)]


def json_reply(payload, status: int = 200):
    return status, "application/json", json.dumps(payload).encode()
