"""Read-only endpoints. Thin: a view from the shared snapshot cache (in a worker thread, never
on the event loop) handed to the same report functions the CLI's ``--json`` uses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from vifscope import __version__
from vifscope.exporter.encoding import negotiate
from vifscope.report import documents as report
from vifscope.report.findings import doctor_report, select
from vifscope.report.graph import graph_document
from vifscope.report.topology import build_topology
from vifscope.serve.backend import Backend
from vifscope.serve.errors import ApiError, error_responses
from vifscope.serve.etag import NOT_MODIFIED_DOC, conditional, content_tag
from vifscope.serve.host import host_document
from vifscope.serve.live import Feed, event_text
from vifscope.serve.schema import (
    VIF_LINKS,
    FindingsDoc,
    HealthDoc,
    HostDoc,
    InfoDoc,
    NetworksDoc,
    StatusDoc,
    TopologyDoc,
)
from vifscope.serve.state import Rendered, View

KEEPALIVE = 15.0  # seconds between SSE comments, so proxies keep an idle stream open
Domains = Annotated[list[str] | None, Query(description="only this domain, by name or UUID (repeatable)")]
Problems = Annotated[bool, Query(description="only vifs that are not bound or inactive")]
IfNoneMatch = Annotated[str | None, Header(description="the ETag of a copy you hold: 304 if it is still current")]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": NOT_MODIFIED_DOC}}


def _json(doc: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(doc, status_code=status)


def _encode(doc: dict[str, Any], status: int = 200) -> Rendered:
    """As JSONResponse renders it (compact, UTF-8)."""
    return status, json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _once(view: View, key: Hashable, build: Callable[[], Rendered]) -> Response:
    """The view's answer for ``key``, built by the first request that needs it, with its ETag."""
    status, body = view.rendered(key, build)
    _, tag = view.rendered(("etag", key), lambda: (status, content_tag(body).encode()))
    headers = {"ETag": tag.decode(), "Cache-Control": "no-cache"}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def status_doc(view: View, domains: tuple[str, ...], problems: bool) -> Response:
    def build() -> Rendered:
        return _encode(report.status_report(view.snapshot, report.select(view.bindings, domains, problems)))

    return _once(view, ("vifs", domains, problems), build)


def domain_doc(view: View, domain: str) -> Response:
    def build() -> Rendered:
        mine = view.domain_bindings(domain)
        if not mine:
            if view.snapshot.failed("libvirt"):
                raise ApiError(503, "libvirt is unavailable: cannot look the domain up", "is libvirtd running?")
            raise ApiError(404, f"no domain {domain!r} with interfaces", "GET /api/v1/vifs lists every vif")
        return _encode(report.status_report(view.snapshot, mine))

    return _once(view, ("vif", domain), build)


def networks_doc(view: View) -> Response:
    return _once(view, ("networks",), lambda: _encode(report.networks_report(view.snapshot)))


def findings_doc(view: View, domains: tuple[str, ...]) -> Response:
    def build() -> Rendered:
        return _encode(doctor_report(view.snapshot, select(view.check_run, view.bindings, domains), view.bindings))

    return _once(view, ("findings", domains), build)


def topology_doc(view: View, domains: tuple[str, ...], problems: bool) -> Response:
    def build() -> Rendered:
        if not domains and not problems:
            return _encode(graph_document(view.snapshot, view.bindings, view.topology))
        chosen = report.select(view.bindings, domains, problems)
        topo = build_topology(view.snapshot, chosen, all_networks=False)
        return _encode(graph_document(view.snapshot, chosen, topo))

    return _once(view, ("topology", domains, problems), build)


def health_doc(view: View) -> Response:
    def build() -> Rendered:
        failed = [e for e in view.snapshot.errors if e.source in report.REQUIRED_SOURCES]
        doc = {
            "status": "degraded" if failed else "ok",
            "version": __version__,
            "source_errors": report.errors_list(view.snapshot.errors),
        }
        return _encode(doc, 503 if failed else 200)

    return _once(view, ("health",), build)


def read_router(b: Backend, feed: Feed) -> APIRouter:
    r = APIRouter(tags=["read"])
    age = b.interval

    @r.get(
        "/api/v1/vifs", responses={200: {"model": StatusDoc, "links": VIF_LINKS}, **NOT_MODIFIED}, operation_id="vifs"
    )
    async def vifs(domain: Domains = None, problems: Problems = False, if_none_match: IfNoneMatch = None) -> Response:
        """Every vif and its binding verdict (``vifscope status --json``)."""
        resp = await run_in_threadpool(lambda: status_doc(b.snapshots.get(age), tuple(domain or ()), problems))
        return conditional(if_none_match, resp)

    @r.get(
        "/api/v1/vifs/{domain}",
        responses={200: {"model": StatusDoc, "links": VIF_LINKS}, **error_responses(404, 503)},
        operation_id="vifs_of_domain",
    )
    async def vifs_of(domain: str) -> Response:
        """The vifs of one domain, by name or UUID (``vifscope status -d DOMAIN --json``)."""
        return await run_in_threadpool(lambda: domain_doc(b.snapshots.get(age), domain))

    @r.get("/api/v1/networks", responses={200: {"model": NetworksDoc}})
    async def networks() -> Response:
        """libvirt networks, their bridges and DHCP (``vifscope networks --json``)."""
        return await run_in_threadpool(lambda: networks_doc(b.snapshots.get(age)))

    @r.get("/api/v1/findings", responses={200: {"model": FindingsDoc}, **NOT_MODIFIED})
    async def findings(domain: Domains = None, if_none_match: IfNoneMatch = None) -> Response:
        """Doctor findings with evidence and fixes (``vifscope doctor --json``)."""
        resp = await run_in_threadpool(lambda: findings_doc(b.deep.get(b.findings_max_age), tuple(domain or ())))
        return conditional(if_none_match, resp)

    @r.get("/api/v1/topology", responses={200: {"model": TopologyDoc}})
    async def topology(domain: Domains = None, problems: Problems = False) -> Response:
        """The graph host → uplinks → switches → vifs → domains (``vifscope graph --format json``)."""
        return await run_in_threadpool(lambda: topology_doc(b.snapshots.get(age), tuple(domain or ()), problems))

    @r.get("/healthz", responses={200: {"model": HealthDoc}, 503: {"model": HealthDoc}})
    async def healthz() -> Response:
        """200 when libvirt and the link dump answer; 503 (with the errors) when one does not."""
        return await run_in_threadpool(lambda: health_doc(b.snapshots.get(age)))

    @r.get("/api/v1/host", responses={200: {"model": HostDoc}, **NOT_MODIFIED})
    async def host(if_none_match: IfNoneMatch = None) -> Response:
        """This agent's identity (``--host-id``, else the machine-id), versions, uptime and
        source health: what a hub (``vifscope fleet``) asks first. Its ETag leaves the
        uptimes out: a hub holding an older copy gets a 304 while nothing else changed."""
        view = await run_in_threadpool(lambda: b.snapshots.get(age))
        _, body = _encode(host_document(b.identity, view, b.uri, b.token is not None))
        headers = {"ETag": content_tag(body), "Cache-Control": "no-cache"}
        resp = Response(body, media_type="application/json", headers=headers)
        return conditional(if_none_match, resp)

    @r.get("/api/v1/info", responses={200: {"model": InfoDoc}})
    async def info() -> Response:
        """What the page needs to know about this server (no snapshot taken)."""
        doc = {"version": __version__, "uri": b.uri, "mutations": b.token is not None, "interval": age}
        return _json({**doc, "fleet": b.fleet is not None, "flows": b.flows is not None})

    @r.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (the exporter's collector, one scrape per request); gzipped when the
        request's Accept-Encoding allows it, as Prometheus asks."""
        scrape = b.metrics
        if scrape is None:
            raise ApiError(404, "metrics are not enabled on this server")
        accept = request.headers.get("accept-encoding")
        body, headers = await run_in_threadpool(lambda: negotiate(scrape(), accept))  # gzip is CPU: off the loop
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8", headers=dict(headers))

    @r.get("/api/v1/events", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
    async def events() -> StreamingResponse:
        """Server-sent events: ``hello`` on connect, then ``vifs`` whenever a binding changes."""
        return StreamingResponse(
            _stream(feed),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return r


async def _stream(feed: Feed) -> AsyncIterator[str]:
    q = feed.subscribe()
    try:
        yield "retry: 2000\n" + event_text("hello", {"interval": feed.interval})
        while True:
            try:
                yield await asyncio.wait_for(q.get(), timeout=KEEPALIVE)
            except TimeoutError:
                yield ": keepalive\n\n"
    finally:
        feed.unsubscribe(q)
