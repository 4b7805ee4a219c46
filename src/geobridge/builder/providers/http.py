"""The HTTP client every web provider shares.

- politeness: at most ``requests_per_second`` requests, across threads;
- retries with exponential back-off on connection errors, timeouts and the retry statuses
  (429 and 5xx unless the caller names others; a server's ``Retry-After`` is honoured), every wait
  capped at ``max_backoff_s``; other 4xx fail at once, with the start of the server's reason;
- an on-disk cache keyed by a hash of the request, so a resumed or repeated build never asks twice;
  a caller's ``validate`` can refuse a JSON answer, which is then neither cached nor served from cache;
- content checks: an image request that gets an HTML page (a login wall, a quota message, an
  error page served with status 200) fails with that reason instead of poisoning the dataset.

Secrets (API keys in query parameters or headers) never appear in messages or logs: URLs are
redacted before they are shown, secret header and parameter values are cut out of the server
text quoted in errors, and cache files are named by a hash (headers are not part of the key).

The waits between retries go through an injectable ``sleep`` so tests can record them instead of
waiting.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from geobridge.atomic import atomic_write_bytes
from geobridge.builder.config import HttpSettings
from geobridge.builder.providers.base import ProviderError
from geobridge.builder.providers.images import describe_non_image, image_kind, looks_like_html

SECRET_PARAMS = frozenset({"key", "access_token", "api_key", "apikey", "token", "signature", "client_secret"})
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0
REASON_CHARS = 200  # how much of a refusing server's text an error quotes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpResponse:
    """A successful response body and its declared type."""

    body: bytes
    content_type: str
    from_cache: bool


@dataclass(frozen=True)
class JsonReply:
    """A parsed JSON answer and whether it came from the on-disk cache."""

    data: Any
    from_cache: bool


def redact(url: str, params: Mapping[str, Any] | None = None) -> str:
    """The URL with secret query values replaced by '***', fit for messages."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = [(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in parse_qsl(parts.query)]
    query += [(k, "***" if k.lower() in SECRET_PARAMS else str(v)) for k, v in (params or {}).items()]
    return urlunsplit(parts._replace(query=urlencode(query, safe=",*")))


class HttpClient:
    """Rate-limited, retrying, caching HTTP GET/POST (see the module docstring).

    ``sleep`` waits between retries (tests pass a recorder); ``retry_statuses`` are the HTTP
    statuses worth asking again; ``max_backoff_s`` caps every back-off and ``Retry-After`` wait.
    """

    def __init__(
        self,
        settings: HttpSettings | None = None,
        cache_dir: str | Path | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        retry_statuses: Collection[int] = RETRY_STATUSES,
        max_backoff_s: float = MAX_BACKOFF_S,
    ):
        import httpx

        self.settings = settings or HttpSettings()
        self.retry_statuses = frozenset(retry_statuses)
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self.cache_dir = (
            Path(cache_dir)
            if cache_dir
            else (Path(self.settings.cache_dir) if self.settings.cache_dir else None)
        )
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

    def get_json(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        use_cache: bool = True,
    ) -> Any:
        response = self.get(url, params=params, headers=headers, expect="json", use_cache=use_cache)
        return json.loads(response.body)

    def post_json_reply(
        self,
        url: str,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        use_cache: bool = True,
        validate: Callable[[Any], object] | None = None,
    ) -> JsonReply:
        """POST a JSON body; the parsed answer and whether the cache served it.

        The cache key is the URL and the body, never the headers (they may hold a key).
        ``validate(data)`` (its return value is ignored) raises `ProviderError` for an answer that
        is JSON but unusable: a fresh one is refused and not cached; a cached one is ignored and
        asked again.
        """
        body = json.dumps(payload, sort_keys=True).encode()
        key = self._cache_key("POST", url, None, None, body)
        cached = self._cache_read(key) if use_cache else None
        if cached is not None:
            try:
                data = json.loads(cached.body)
                if validate is not None:
                    validate(data)
                return JsonReply(data, from_cache=True)
            except (ValueError, ProviderError) as err:
                log.warning("ignoring unusable cache entry %s for %s (%s)", key[:12], redact(url), err)
        response = self._send(
            "POST", url, content=body, headers={**(headers or {}), "Content-Type": "application/json"}
        )
        self._check(response, "json", redact(url))
        data = json.loads(response.body)
        if validate is not None:
            validate(data)
        if use_cache:
            self._cache_write(key, response)
        return JsonReply(data, from_cache=False)

    # --- internals ------------------------------------------------------------------------------

    def _wait_for_slot(self) -> None:
        interval = 1.0 / self.settings.requests_per_second
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + interval
        delay = slot - now
        if delay > 0:
            time.sleep(delay)  # politeness, not back-off: always a real wait

    def _send(self, method: str, url: str, **kwargs) -> HttpResponse:
        import httpx

        shown = redact(url, kwargs.get("params"))
        attempts = self.settings.retries + 1
        last_problem = "no attempt made"
        last_retry_after: str | None = None
        for attempt in range(attempts):
            if attempt:
                delay = self._backoff(attempt, last_retry_after)
                log.info(
                    "retry %d/%d of %s %s in %.2fs after %s",
                    attempt,
                    self.settings.retries,
                    method,
                    shown,
                    delay,
                    last_problem,
                )
                self._sleep(delay)
            last_retry_after = None
            self._wait_for_slot()
            log.debug("%s %s (attempt %d/%d)", method, shown, attempt + 1, attempts)
            try:
                self.requests_sent += 1
                reply = self._client.request(method, url, **kwargs)
            except httpx.HTTPError as err:
                last_problem = f"{type(err).__name__} contacting {shown}"
                continue
            if reply.status_code in self.retry_statuses:
                last_problem = f"HTTP {reply.status_code} from {shown}"
                last_retry_after = reply.headers.get("Retry-After")
                continue
            if reply.status_code >= 400:
                reason = _reason(
                    reply.content, _secret_values(url, kwargs.get("params"), kwargs.get("headers"))
                )
                raise ProviderError(
                    f"HTTP {reply.status_code} from {shown}" + (f": {reason}" if reason else "")
                )
            return HttpResponse(reply.content, reply.headers.get("content-type", ""), from_cache=False)
        raise ProviderError(f"{last_problem} (gave up after {attempts} attempts)")

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        """Exponential back-off, at least a server's numeric ``Retry-After``, at most ``max_backoff_s``."""
        delay = self.settings.backoff_s * (2 ** (attempt - 1))
        if retry_after:
            try:
                asked = float(retry_after)
            except ValueError:  # an HTTP date: keep the exponential delay
                asked = 0.0
            if math.isfinite(asked) and asked > 0:
                delay = max(delay, asked)
        return min(delay, self.max_backoff_s)

    @staticmethod
    def _check(response: HttpResponse, expect: str, shown_url: str) -> None:
        if expect == "image" and image_kind(response.body) is None:
            raise ProviderError(f"{shown_url}: {describe_non_image(response.body, response.content_type)}")
        if expect == "json":
            try:
                json.loads(response.body)
            except ValueError:
                kind = (
                    "an HTML page"
                    if looks_like_html(response.body)
                    else f"{len(response.body)} bytes of non-JSON"
                )
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


def _secret_values(
    url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None
) -> list[str]:
    """The values of secret query parameters (in the URL or ``params``) and of credential headers
    (whole and their token part)."""
    from urllib.parse import parse_qsl, urlsplit

    query = [*parse_qsl(urlsplit(url).query), *(params or {}).items()]
    secrets = [str(v) for k, v in query if k.lower() in SECRET_PARAMS]
    for name, value in (headers or {}).items():
        if name.lower() in SECRET_HEADERS:
            secrets += [value, *(token for token in value.split() if len(token) >= 8)]
    return [s for s in secrets if s]


def _reason(body: bytes, secrets: list[str]) -> str:
    """The start of a refusing server's text for an error message, secrets cut out."""
    if looks_like_html(body):
        return "an HTML page"
    text = body.decode("utf-8", errors="replace")
    for secret in sorted(secrets, key=len, reverse=True):  # before cutting, so no half secret is left
        text = text.replace(secret, "***")
    return " ".join(text.split())[:REASON_CHARS]
