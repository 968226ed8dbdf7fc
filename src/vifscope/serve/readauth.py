"""Reads behind a token (``[serve] read_token_file``): for an agent a fleet hub or Prometheus
reaches over a network, distinct from the token that may change bindings.

With a read token set, every read endpoint wants ``Authorization: Bearer`` with the read
token or the API (mutation) token; ``/healthz`` stays open for liveness probes (it says
ok/degraded and names failed sources, nothing of the guests). The page and its static files
stay open too, but their data comes from the guarded endpoints: a browser cannot send the
header from an EventSource, so the page is for a server without a read token (or behind a
proxy that adds it). Without a read token, reads are open, as before.

Tokens are compared as SHA-256 digests with hmac.compare_digest: constant time, and the
length does not show either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from fastapi import Request

from vifscope.serve.errors import ApiError

OPEN_PATHS = frozenset({"/healthz"})
HINT = "send 'Authorization: Bearer TOKEN' with the server's read token (or its API token)"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def read_guard(read_token: str | None, api_token: str | None) -> Callable[[Request], None]:
    """A FastAPI dependency for the read router: passes every request when no read token is set."""
    accepted = [_digest(t) for t in (read_token, api_token) if t]

    def guard(request: Request) -> None:
        if read_token is None or request.url.path in OPEN_PATHS:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "this server's reads need a bearer token", HINT)
        offered = _digest(given.strip())
        matches = [hmac.compare_digest(offered, t) for t in accepted]  # every one compared: no early exit
        if not any(matches):
            raise ApiError(401, "wrong bearer token", HINT)

    return guard
