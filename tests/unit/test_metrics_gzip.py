"""``/metrics`` answers ``Accept-Encoding: gzip`` with a gzipped body (Content-Encoding: gzip,
Vary: Accept-Encoding) and anything else with the plain body, on the exporter's own HTTP
server and on ``vifscope serve``. The body is one real scrape of libvirt's test driver, fixed
so that two requests can be compared byte for byte; what is under test is what the servers do
with it.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.unit.ipjson import snapshot
from vifscope.cli.exporter import make_handler
from vifscope.exporter.collector import Exporter
from vifscope.exporter.encoding import accepts_gzip, negotiate
from vifscope.serve.app import create_app
from vifscope.serve.backend import Backend
from vifscope.serve.state import Snapshots


class FixedExporter(Exporter):
    """The real exporter, its first scrape served again on every request."""

    body: bytes | None = None

    def render_metrics(self, timeout: float | None = None) -> bytes:
        if self.body is None:
            self.body = super().render_metrics(timeout)
        return self.body


@pytest.fixture(scope="module")
def exporter() -> FixedExporter:
    exp = FixedExporter("test:///default", timeout=5.0, audit_log=None)
    assert b"vifscope_vif_bound{" in exp.render_metrics()
    return exp


@pytest.fixture
def url(exporter: FixedExporter) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(exporter, 5.0, lambda _line: None))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str, headers: dict[str, str]) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One GET with exactly these headers (http.client adds no Accept-Encoding of its own)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        conn.request("GET", parts.path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        ("gzip", True),  # what Prometheus sends
        ("GZIP", True),
        ("deflate, gzip;q=1.0, *;q=0.5", True),
        ("br;q=1, gzip;q=0.2", True),
        ("*", True),
        (None, False),
        ("", False),
        ("identity", False),
        ("deflate, br", False),
        ("gzip;q=0", False),
        ("gzip;q=0, *", False),  # an explicit refusal beats the wildcard
        ("*;q=0", False),
        ("gzip;q=nonsense", False),
        ("xgzip, gzipx", False),
    ],
)
def test_accepts_gzip(header: str | None, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok


def test_negotiate_round_trips_and_always_varies() -> None:
    body = b'vifscope_vif_bound{domain="d",index="0"} 1\n' * 1000
    packed, headers = negotiate(body, "gzip")
    assert gzip.decompress(packed) == body and len(packed) < len(body) // 20
    assert ("Content-Encoding", "gzip") in headers and ("Vary", "Accept-Encoding") in headers
    assert negotiate(body, "identity") == (body, [("Vary", "Accept-Encoding")])


def test_exporter_http_gzip_gunzips_to_the_plain_body(url: str, exporter: FixedExporter) -> None:
    status, plain_headers, plain = get(url, {})
    assert status == 200 and plain_headers["Content-Encoding"] is None and plain == exporter.body
    assert plain_headers["Vary"] == "Accept-Encoding"
    status, headers, packed = get(url, {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and headers["Vary"] == "Accept-Encoding"
    assert headers["Content-Type"] == plain_headers["Content-Type"]
    assert int(headers["Content-Length"]) == len(packed) < len(plain)
    assert gzip.decompress(packed) == plain


def test_exporter_http_identity_and_refused_gzip_get_the_plain_body(url: str, exporter: FixedExporter) -> None:
    for accept in ("identity", "gzip;q=0", "br"):
        status, headers, body = get(url, {"Accept-Encoding": accept})
        assert status == 200 and headers["Content-Encoding"] is None and body == exporter.body, accept


async def _serve_get(app: Any, accept: str) -> tuple[int, httpx.Headers, bytes]:
    transport = httpx.ASGITransport(app=app)  # no lifespan: the live feed is not started
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://vs-serve") as client,
        client.stream("GET", "/metrics", headers={"Accept-Encoding": accept}) as resp,
    ):
        raw = b"".join([chunk async for chunk in resp.aiter_raw()])  # the bytes sent, not httpx's decoding
        return resp.status_code, resp.headers, raw


def test_serve_metrics_gzip_and_identity(exporter: FixedExporter) -> None:
    snaps = Snapshots(snapshot)
    app = create_app(Backend("test:///default", snaps, snaps, metrics=exporter.render_metrics))
    status, headers, packed = asyncio.run(_serve_get(app, "gzip"))
    assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(packed) == exporter.body
    status, headers, plain = asyncio.run(_serve_get(app, "identity"))
    assert status == 200 and "content-encoding" not in headers and plain == exporter.body
