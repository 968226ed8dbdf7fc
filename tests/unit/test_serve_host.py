"""What ``serve`` gives a fleet hub: the identity document and the content ETag. (Over HTTP,
on real agents: tests/integration/test_fleet_agents.py.)"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.ipjson import bridge, snapshot, tap
from tests.unit.test_topology import vif
from vifscope.bind.join import bind
from vifscope.model import SourceError
from vifscope.report import documents as report
from vifscope.serve.app import create_app
from vifscope.serve.backend import Backend
from vifscope.serve.config import ServeConfigError, parse_serve_config, tls_context
from vifscope.serve.etag import _matches, content_tag
from vifscope.serve.host import Identity, host_document
from vifscope.serve.state import Snapshots, View
from vifscope.sources.hostid import read_host_uptime, read_machine_id


def _body(snap_time: datetime, rx: int, carrier: bool = True) -> bytes:
    web = dataclasses.replace(vif("web", "bridge", "br0", "vnet0", mac="52:54:00:00:00:01"), domain_uuid="u-web")
    link = tap("vnet0", master="br0", carrier=carrier)
    link["stats64"] = {"rx": {"bytes": rx, "packets": 1}, "tx": {"bytes": 2, "packets": 1}}
    snap = snapshot([web], [bridge("br0"), link])
    snap = dataclasses.replace(snap, taken_at=snap_time)
    doc = report.status_report(snap, bind(snap))
    return json.dumps(doc, separators=(",", ":")).encode()


def test_the_tag_ignores_the_time_and_the_counters_but_not_a_verdict() -> None:
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    first = _body(t0, rx=10)
    assert b'"rx_bytes":10' in first  # the counters are in the answer: the tag must skip them
    assert content_tag(first) == content_tag(_body(t1, rx=99999))
    assert content_tag(first) != content_tag(_body(t0, rx=10, carrier=False))
    assert content_tag(first).startswith('W/"')


def test_a_quoted_key_inside_a_value_is_content() -> None:
    """A domain named like the volatile keys: escaped in JSON, so it is hashed, not blanked."""
    a = json.dumps({"domain": '"taken_at":"x"'}, separators=(",", ":")).encode()
    b = json.dumps({"domain": '"taken_at":"y"'}, separators=(",", ":")).encode()
    assert content_tag(a) != content_tag(b)


@pytest.mark.parametrize(
    ("header", "hit"),
    [('W/"abc"', True), ('"abc"', True), ('"x", W/"abc"', True), ("*", True), ('W/"abd"', False), ("", False)],
)
def test_if_none_match_uses_the_weak_comparison(header: str, hit: bool) -> None:
    assert _matches(header, 'W/"abc"') is hit


def test_identity_prefers_the_flag_then_the_machine_id() -> None:
    assert Identity.resolve("rack3-07").host_id_source == "flag"
    ident = Identity.resolve(None)
    machine = read_machine_id()
    want = (machine, "machine-id") if machine else (ident.hostname, "hostname")
    assert (ident.host_id, ident.host_id_source) == want


def test_readers_answer_none_when_they_cannot_tell(tmp_path: Path) -> None:
    assert read_machine_id(tmp_path / "absent") is None
    (tmp_path / "empty").write_text("\n")
    assert read_machine_id(tmp_path / "empty") is None
    (tmp_path / "uptime").write_text("12.5 40.1\n")
    assert read_host_uptime(tmp_path / "uptime") == 12.5
    (tmp_path / "bad").write_text("nope\n")
    assert read_host_uptime(tmp_path / "bad") is None


def test_host_document_says_degraded_when_a_required_source_failed() -> None:
    snap = snapshot([vif("web", "bridge", "br0", "vnet0")], [bridge("br0"), tap("vnet0", master="br0")])
    ident = Identity("h1", "flag", "box", "9.0.0", time.monotonic())
    ok = host_document(ident, View(snap, bind(snap), 0.0), "test:///default", False)
    assert (ok["host_id"], ok["status"], ok["vifs"], ok["source_errors"]) == ("h1", "ok", 1, [])
    broken = dataclasses.replace(snap, errors=(SourceError("netlink", "no answer", "hint"),))
    bad = host_document(ident, View(broken, bind(broken), 0.0), "test:///default", True)
    assert bad["status"] == "degraded" and bad["source_errors"][0]["source"] == "netlink" and bad["mutations"]


def test_host_id_in_the_serve_table(tmp_path: Path) -> None:
    assert parse_serve_config('[serve]\nhost_id = "kvm-07"\n', tmp_path / "v.toml").host_id == "kvm-07"


def test_tls_wants_both_files_and_usable_ones(tmp_path: Path) -> None:
    assert tls_context(None, None) is None
    with pytest.raises(ServeConfigError, match="both a certificate and its key"):
        tls_context(tmp_path / "cert.pem", None)
    with pytest.raises(ServeConfigError, match="cannot read the TLS files"):
        tls_context(tmp_path / "absent.pem", tmp_path / "absent-key.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(ServeConfigError, match="not usable"):
        tls_context(junk, junk)
    cfg = parse_serve_config('[serve]\ntls_cert = "/etc/c.pem"\ntls_key = "/etc/k.pem"\n', tmp_path / "v.toml")
    assert (cfg.tls_cert, cfg.tls_key) == (Path("/etc/c.pem"), Path("/etc/k.pem"))


def _read(app: Any, path: str, token: str | None = None) -> int:
    async def go() -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=app)  # no lifespan: the live feed is not started
        async with httpx.AsyncClient(transport=transport, base_url="http://vs-f-serve") as client:
            return (await client.get(path, headers=headers)).status_code

    return asyncio.run(go())


def test_a_read_token_guards_every_read_but_healthz() -> None:
    snap = snapshot([vif("web", "bridge", "br0", "vnet0")], [bridge("br0"), tap("vnet0", master="br0")])
    snaps = Snapshots(lambda: snap)
    reader, writer = "r" * 20, "w" * 20
    guarded = create_app(Backend("test:///default", snaps, snaps, token=writer, read_token=reader))
    for path in ("/api/v1/vifs", "/api/v1/host", "/api/v1/info", "/api/v1/topology"):
        assert _read(guarded, path) == 401, path
        assert _read(guarded, path, "x" * 20) == 401, path
        assert _read(guarded, path, reader) == 200, path
        assert _read(guarded, path, writer) == 200, path  # the API token may read too
    assert _read(guarded, "/healthz") == 200  # liveness probes need no token
    assert _read(guarded, "/api/v1/nope", reader) == 404
    open_app = create_app(Backend("test:///default", snaps, snaps, token=writer))
    assert _read(open_app, "/api/v1/vifs") == 200  # no read token: reads are open, as before
