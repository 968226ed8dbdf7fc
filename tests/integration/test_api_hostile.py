"""The API against hostile clients: a real ``vifscope serve`` process on loopback, reading
libvirt's test driver with the hostile-names node (hostile_host.node_xml) and this host's
links (none of which carry those names: every vif is "missing", so no request can plan a
change here).

- every mutating endpoint refuses a request without the right token (401, a challenge), and
  a server with no token configured refuses them all (403); the comparison is
  ``hmac.compare_digest`` (serve/mutate.py);
- a body over ``--max-body`` gets 413, whether its Content-Length says so or it streams in
  chunked; under the limit the same request goes through;
- with ``--access-log`` on, nothing the server writes (access log, errors, audit log) holds
  the token or a wrong one, whichever way it was sent;
- schemathesis' quick slice (negative data, stateful links) on the hostile-names host in its
  netns: bench/api_fuzz.py --quick, 0 server errors, 0 check failures, no token logged.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.hostile_host import D1, MAC, ROOT, T1, node_xml

pytestmark = pytest.mark.integration
TOKEN = "vs-h-" + "c0ffee" * 5
WRONG = "vs-h-" + "deadbeef" * 4
MUTATIONS = ("fix", "heal", "link")


@dataclass
class Srv:
    host: str
    port: int
    proc: subprocess.Popen[str]
    audit: Path

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


@contextmanager
def serve(tmp: Path, *flags: str, token: bool = True) -> Iterator[Srv]:
    (tmp / "node.xml").write_text(node_xml())
    audit = tmp / "actions.jsonl"
    cmd = [sys.executable, "-m", "vifscope", "-c", f"test://{tmp / 'node.xml'}", "serve", "--json"]
    cmd += ["--listen", "127.0.0.1:0", "--audit-log", str(audit), *flags]
    if token:
        (tmp / "token").write_text(TOKEN + "\n")
        (tmp / "token").chmod(0o600)
        cmd += ["--token-file", str(tmp / "token")]
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        url = urllib.parse.urlsplit(json.loads(line)["url"])
        yield Srv(url.hostname or "", url.port or 0, proc, audit)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def vif_path(what: str) -> str:
    return f"/api/v1/vifs/{urllib.parse.quote(D1, safe='')}/{MAC[T1]}/{what}"


JSON = {"Content-Type": "application/json"}


def test_every_mutation_is_refused_without_the_right_token(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        spec = json.loads(srv.request("GET", "/openapi.json")[2])
        posts = sorted(p for p, ops in spec["paths"].items() if "post" in ops)
        assert [p.rsplit("/", 1)[-1] for p in posts] == sorted(MUTATIONS)  # every mutating route is here
        for what in MUTATIONS:
            body = json.dumps({"state": "up", "dry_run": True} if what == "link" else {"dry_run": True}).encode()
            for auth in (
                None,
                f"Bearer {WRONG}",
                f"Basic {TOKEN}",
                f"Bearer {TOKEN[:-1]}",
                "Bearer",
                f"bearer  {TOKEN}x",
            ):
                headers = {**JSON, **({"Authorization": auth} if auth else {})}
                status, hdrs, raw = srv.request("POST", vif_path(what), body, headers)
                assert status == 401, (what, auth, status, raw[:200])
                assert hdrs["www-authenticate"].startswith("Bearer")
                assert TOKEN.encode() not in raw and WRONG.encode() not in raw
            status, _, raw = srv.request("POST", vif_path(what) + f"?token={TOKEN}", body, JSON)
            assert status == 401, raw[:200]  # a token in the URL is no token
            status, _, raw = srv.request("POST", vif_path(what), body, {**JSON, "Authorization": f"Bearer {TOKEN}"})
            assert status in (200, 409), raw[:300]  # the right token gets through (dry run: nothing changes)
    (tmp_path / "ro").mkdir()
    with serve(tmp_path / "ro", token=False) as ro:
        for what in MUTATIONS:
            status, _, raw = ro.request("POST", vif_path(what), b"{}", {**JSON, "Authorization": f"Bearer {TOKEN}"})
            assert status == 403 and b"read-only" in raw


def _chunked(srv: Srv, path: str, chunks: list[bytes], headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
    try:
        conn.request("POST", path, body=iter(chunks), headers=headers, encode_chunked=True)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_a_body_over_the_limit_is_refused_declared_or_streamed(tmp_path: Path) -> None:
    auth = {**JSON, "Authorization": f"Bearer {TOKEN}"}
    small = b'{"dry_run": true}' + b" " * 900  # 917 bytes: under the 1,024 limit
    big = b'{"dry_run": true}' + b" " * 2000
    with serve(tmp_path, "--max-body", "1024") as srv:
        status, _, raw = srv.request("POST", vif_path("heal"), small, auth)
        assert status == 200 and json.loads(raw)["result"] in ("dry-run", "nothing-to-do"), raw[:300]
        status, _, raw = srv.request("POST", vif_path("heal"), big, auth)
        assert status == 413 and b"1024 byte limit" in raw, raw[:300]
        status, raw = _chunked(srv, vif_path("heal"), [big[i : i + 256] for i in range(0, len(big), 256)], auth)
        assert status == 413 and b"over 1024 bytes" in raw, raw[:300]
        status, raw = _chunked(srv, vif_path("heal"), [small[:400], small[400:]], auth)
        assert status == 200, raw[:300]
        status, _, raw = srv.request("POST", vif_path("heal"), big, JSON)  # no token either: still refused
        assert status in (401, 413)
        assert srv.request("GET", "/healthz")[0] in (200, 503)  # and the server is still there


def test_no_token_is_ever_logged(tmp_path: Path) -> None:
    """Access log on; the token and a wrong one sent every way a client might: header, body,
    query string, path. The server's whole output and the audit log never hold either."""
    with serve(tmp_path, "--access-log") as srv:
        for secret in (TOKEN, WRONG):
            auth = {**JSON, "Authorization": f"Bearer {secret}"}
            srv.request("POST", vif_path("heal"), b'{"dry_run": true}', auth)
            srv.request("POST", vif_path("fix"), json.dumps({"dry_run": secret}).encode(), auth)  # 422
            srv.request("POST", vif_path("link"), b"{", auth)  # malformed JSON
            srv.request("GET", "/api/v1/vifs", None, {"Authorization": f"Bearer {secret}"})
            srv.request("GET", f"/api/v1/vifs?token={secret}&domain=x")  # a client that put it in the URL
            srv.request("POST", "/api/v1/vifs/x/52:54:00:00:00:01/nope", b"{}", auth)  # 404
        srv.proc.terminate()
        out, err = srv.proc.communicate(timeout=30)
    logged = out + err + (srv.audit.read_text() if srv.audit.exists() else "")
    assert "POST /api/v1/vifs/" in err and "GET /api/v1/vifs?[query not logged]" in err  # the access log ran
    assert TOKEN not in logged and WRONG not in logged
    assert TOKEN[5:] not in logged and WRONG[5:] not in logged


def test_schemathesis_quick_slice_on_the_hostile_host() -> None:
    ran = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "api_fuzz.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert ran.returncode == 0, (ran.stdout[-4000:], ran.stderr[-2000:])
    assert "Token occurrences" in ran.stdout and "**0**" in ran.stdout


def test_request_bodies_are_strict(tmp_path: Path) -> None:
    """schemathesis found {"dry_run": 0} accepted as false: pydantic's lax mode coerced it, so
    {"dry_run": "off"} would have changed the host. Now anything but true/false is a 422."""
    auth = {**JSON, "Authorization": f"Bearer {TOKEN}"}
    with serve(tmp_path) as srv:
        for body in ({"dry_run": 0}, {"dry_run": "off"}, {"dry_run": "true"}, {"dry_run": None}):
            status, _, raw = srv.request("POST", vif_path("heal"), json.dumps(body).encode(), auth)
            assert status == 422, (body, raw[:200])
        status, _, raw = srv.request("POST", vif_path("link"), json.dumps({"state": "up", "dry_run": 1}).encode(), auth)
        assert status == 422, raw[:200]
        status, _, raw = srv.request("POST", vif_path("heal"), b'{"dry_run": true}', auth)
        assert status == 200, raw[:200]
