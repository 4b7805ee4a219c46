"""The HTTP client every web provider shares.

- politeness: at most ``requests_per_second`` requests, across threads;
- retries with exponential back-off on connection errors, timeouts, 429 and 5xx (a server's
  ``Retry-After`` is honoured up to a limit); other 4xx fail at once;
- an on-disk cache keyed by a hash of the request, so a resumed or repeated build never asks twice;
- content checks: an image request that gets an HTML page (a login wall, a quota message, an
  error page served with status 200) fails with that reason instead of poisoning the dataset.

Secrets (API keys in query parameters or headers) never appear in messages or logs: URLs are
redacted before they are shown, and cache files are named by a hash.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlencode

from geobridge.atomic import atomic_write_bytes
from geobridge.build.config import HttpSettings
from geobridge.build.providers.base import ProviderError
from geobridge.build.providers.images import describe_non_image, image_kind, looks_like_html

SECRET_PARAMS = frozenset({"key", "access_token", "api_key", "apikey", "token", "signature", "client_secret"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class HttpResponse:
    """A successful response body and its declared type."""

    body: bytes
    content_type: str
    from_cache: bool


def redact(url: str, params: Mapping[str, Any] | None = None) -> str:
    """The URL with secret query values replaced by '***', fit for messages."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = [(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in parse_qsl(parts.query)]
    query += [(k, "***" if k.lower() in SECRET_PARAMS else str(v)) for k, v in (params or {}).items()]
    return urlunsplit(parts._replace(query=urlencode(query, safe=",*")))


class HttpClient:
    """Rate-limited, retrying, caching HTTP GET/POST (see the module docstring)."""

    def __init__(self, settings: HttpSettings | None = None, cache_dir: str | Path | None = None):
        import httpx

        self.settings = settings or HttpSettings()
        self.cache_dir = Path(cache_dir) if cache_dir else (Path(self.settings.cache_dir) if self.settings.cache_dir else None)
        self._client = httpx.Client(
            timeout=self.settings.timeout_s,
            follow_redirects=True,
            headers={"User-Agent": self.settings.user_agent},
        )
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self.requests_sent = 0  # network requests actually made (cache hits excluded)

    def close(self) -> None:
        self._client.close()

    # --- public API -----------------------------------------------------------------------------

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        expect: Literal["image", "json", "any"] = "any",
        use_cache: bool = True,
    ) -> HttpResponse:
        """GET with retries; ``expect='image'`` checks the body really is an image."""
        key = self._cache_key("GET", url, params, headers, None)
        if use_cache:
            cached = self._cache_read(key)
            if cached is not None:
                return cached
        response = self._send("GET", url, params=params, headers=headers)
        self._check(response, expect, redact(url, params))
        if use_cache:
            self._cache_write(key, response)
        return response

    def get_json(self, url: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                 use_cache: bool = True) -> Any:
        response = self.get(url, params=params, headers=headers, expect="json", use_cache=use_cache)
        return json.loads(response.body)

    def post_json(self, url: str, payload: Any, headers: Mapping[str, str] | None = None, use_cache: bool = True) -> Any:
        """POST a JSON body and parse the JSON answer (cached by the body's hash)."""
        body = json.dumps(payload, sort_keys=True).encode()
        key = self._cache_key("POST", url, None, None, body)
        cached = self._cache_read(key) if use_cache else None
        if cached is not None:
            return json.loads(cached.body)
        response = self._send("POST", url, content=body, headers={**(headers or {}), "Content-Type": "application/json"})
        self._check(response, "json", redact(url))
        if use_cache:
            self._cache_write(key, response)
        return json.loads(response.body)

    # --- internals ------------------------------------------------------------------------------

    def _wait_for_slot(self) -> None:
        interval = 1.0 / self.settings.requests_per_second
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + interval
        delay = slot - now
        if delay > 0:
            time.sleep(delay)

    def _send(self, method: str, url: str, **kwargs) -> HttpResponse:
        import httpx

        shown = redact(url, kwargs.get("params"))
        last_problem = "no attempt made"
        last_retry_after: str | None = None
        for attempt in range(self.settings.retries + 1):
            if attempt:
                time.sleep(self._backoff(attempt, last_retry_after))
            last_retry_after = None
            self._wait_for_slot()
            try:
                self.requests_sent += 1
                reply = self._client.request(method, url, **kwargs)
            except httpx.HTTPError as err:
                last_problem = f"{type(err).__name__} contacting {shown}"
                continue
            if reply.status_code in RETRY_STATUSES:
                last_problem = f"HTTP {reply.status_code} from {shown}"
                last_retry_after = reply.headers.get("Retry-After")
                continue
            if reply.status_code >= 400:
                raise ProviderError(f"HTTP {reply.status_code} from {shown}")
            return HttpResponse(reply.content, reply.headers.get("content-type", ""), from_cache=False)
        raise ProviderError(f"{last_problem} (gave up after {self.settings.retries + 1} attempts)")

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        delay = self.settings.backoff_s * (2 ** (attempt - 1))
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_S))
            except ValueError:
                pass
        return delay

    @staticmethod
    def _check(response: HttpResponse, expect: str, shown_url: str) -> None:
        if expect == "image" and image_kind(response.body) is None:
            raise ProviderError(f"{shown_url}: {describe_non_image(response.body, response.content_type)}")
        if expect == "json":
            try:
                json.loads(response.body)
            except ValueError:
                kind = "an HTML page" if looks_like_html(response.body) else f"{len(response.body)} bytes of non-JSON"
                raise ProviderError(f"{shown_url}: expected JSON, server returned {kind}") from None

    def _cache_key(self, method, url, params, headers, body) -> str:
        h = hashlib.sha256()
        h.update(method.encode())
        h.update(url.encode())
        h.update(json.dumps(sorted((str(k), str(v)) for k, v in (params or {}).items())).encode())
        h.update(json.dumps(sorted((str(k), str(v)) for k, v in (headers or {}).items())).encode())
        h.update(body or b"")
        return h.hexdigest()

    def _cache_read(self, key: str) -> HttpResponse | None:
        if self.cache_dir is None:
            return None
        body_path = self.cache_dir / key[:2] / f"{key}.body"
        meta_path = body_path.with_suffix(".type")
        if not (body_path.exists() and meta_path.exists()):
            return None
        return HttpResponse(body_path.read_bytes(), meta_path.read_text(), from_cache=True)

    def _cache_write(self, key: str, response: HttpResponse) -> None:
        if self.cache_dir is None:
            return
        body_path = self.cache_dir / key[:2] / f"{key}.body"
        atomic_write_bytes(body_path, response.body)
        atomic_write_bytes(body_path.with_suffix(".type"), response.content_type.encode())
