"""Content negotiation for ``/metrics``: gzip when the client accepts it, as every Prometheus
server asks (``Accept-Encoding: gzip``) and prometheus_client's own handler answers.

The text exposition of a 5,000-vif host is ~15 MB; it is label sets repeated line after line,
so gzip takes it to a few percent of that. ``GZIP_LEVEL`` (BENCHMARKS.md, exporter section, by
bench/exporter_scrape.py), at 5,000 vifs: level 1 gives 1.12 MB for ~40 ms of CPU per scrape;
level 9 (``gzip.compress``'s default, which prometheus_client serves) 0.89 MB for ~390 ms. The
exporter runs on the hypervisor it watches: a tenth of the CPU is worth 0.2 MB more per scrape.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable

GZIP_LEVEL = 1
VARY = ("Vary", "Accept-Encoding")


def _q(params: list[str]) -> float:
    """The ``q=`` weight of one Accept-Encoding item (1 when absent, 0 when unreadable)."""
    for param in params:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (RFC 9110 12.5.3): ``gzip`` or ``*``
    with a non-zero weight, an explicit ``gzip;q=0`` refusing it whatever ``*`` says."""
    weights: dict[str, float] = {}
    for item in (header or "").split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        if coding:
            weights[coding] = _q(params)
    if "gzip" in weights:
        return weights["gzip"] > 0
    return weights.get("*", 0.0) > 0


def gzip_bytes(body: bytes, level: int = GZIP_LEVEL) -> bytes:
    """``body`` as one gzip member (RFC 1952): wbits 16 + 15 asks zlib for the gzip wrapper."""
    return zlib.compress(body, level, wbits=16 + zlib.MAX_WBITS)


def negotiate(body: bytes, accept_encoding: str | None) -> tuple[bytes, list[tuple[str, str]]]:
    """The body to send and its extra headers: gzipped with ``Content-Encoding: gzip`` when
    accepted, else as is. ``Vary`` either way: the answer depends on the request's header."""
    if accepts_gzip(accept_encoding):
        return gzip_bytes(body), [("Content-Encoding", "gzip"), VARY]
    return body, [VARY]


class Body:
    """One collection's exposition, rendered at most once however many scrapes share it
    (single-flight hands the same collection to every scrape that waited for it: rendering
    5,000 vifs once per client would undo that). Every caller gets the same bytes object."""

    def __init__(self, render: Callable[[], bytes]) -> None:
        self._render = render
        self._lock = threading.Lock()  # held while rendering: the others wait for the one render
        self._plain: bytes | None = None

    def plain(self) -> bytes:
        with self._lock:
            if self._plain is None:
                self._plain = self._render()
            return self._plain


class GzipMemo:
    """``negotiate()`` that gzips a body once however many answers send it. Keyed by identity:
    the scrapes sharing a collection all send the same bytes object (``Body.plain()``); at
    5,000 vifs a gzip is ~40 ms of CPU, fifty of them per collection would be two seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held while compressing: the others wait for the one gzip
        self._last: tuple[bytes, bytes] | None = None  # (plain, gzipped): only the latest body

    def negotiate(self, body: bytes, accept_encoding: str | None) -> tuple[bytes, list[tuple[str, str]]]:
        if not accepts_gzip(accept_encoding):
            return body, [VARY]
        with self._lock:
            if self._last is None or self._last[0] is not body:
                self._last = (body, gzip_bytes(body))
            return self._last[1], [("Content-Encoding", "gzip"), VARY]
