"""``vifscope serve`` on the real lab: a real uvicorn server on a free loopback port.

The API answers what the CLI's --json says; bad input gets a clear 4xx JSON error; the
mutating endpoints refuse without / with a wrong token and, with the right one, fix a really
detached tap and set a libvirt link state back up (verified on a fresh snapshot, audit-logged);
schemathesis finds no 500s; ``vifscope graph --format dot`` renders with Graphviz.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.e2e.conftest import sh, vif_of, vifscope, wait_for
from tests.e2e.serve_helpers import TOKEN, Server, call, post, serve
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e
Target = Callable[..., str]


@pytest.fixture(scope="module")
def server(lab: LabSpec, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("vs-g-serve")) as srv:
        yield srv


def get(server: Server, path: str) -> Any:
    ans = call(server.url + path.lstrip("/"))
    assert ans.status == 200, (path, ans.status, ans.body[:300])
    return ans.doc


def mine(doc: dict[str, Any], lab: LabSpec) -> list[tuple[str, int, str | None, str | None, str]]:
    return sorted(
        (v["domain"], v["index"], v["mac"], v["target"], v["status"])
        for v in doc["vifs"]
        if v["domain"].startswith(lab.prefix)
    )


def test_vifs_are_the_cli_json(server: Server, lab: LabSpec) -> None:
    cli = vifscope("status", "--json").doc
    api = get(server, "/api/v1/vifs")
    assert set(api) == set(cli)
    assert mine(api, lab) == mine(cli, lab)
    assert vif_of(api, lab.name("broken"))["status"] == "detached"
    assert set(vif_of(api, lab.name("web1"))) == set(vif_of(cli, lab.name("web1")))
    problems = get(server, f"/api/v1/vifs?problems=true&domain={lab.name('broken')}&domain={lab.name('web1')}")
    assert [v["domain"] for v in problems["vifs"]] == [lab.name("broken")]


def test_one_domain_by_name_or_uuid(server: Server, lab: LabSpec) -> None:
    doc = get(server, f"/api/v1/vifs/{lab.name('multi')}")
    assert [v["index"] for v in doc["vifs"]] == [0, 1]
    uuid = doc["vifs"][0]["domain_uuid"]
    assert [v["target"] for v in get(server, f"/api/v1/vifs/{uuid}")["vifs"]] == [v["target"] for v in doc["vifs"]]


def test_networks_findings_topology(server: Server, lab: LabSpec) -> None:
    nets = {n["name"]: n for n in get(server, "/api/v1/networks")["networks"]}
    assert nets[lab.network]["mode"] == "isolated" and nets[lab.network]["bridge"] == lab.network_bridge
    findings = get(server, f"/api/v1/findings?domain={lab.name('broken')}")["findings"]
    assert any(f["check"] == "vif.detached" and f["domain"] == lab.name("broken") for f in findings)
    assert all(f["domain"] in (None, lab.name("broken")) for f in findings)
    topo = get(server, "/api/v1/topology")
    nodes = {n["id"]: n for n in topo["nodes"]}
    broken = next(n for n in topo["nodes"] if n["kind"] == "vif" and n["domain"] == lab.name("broken"))
    assert broken["status"] == "detached"
    declared = [e for e in topo["edges"] if e["target"] == broken["id"] and e["kind"] == "declared"]
    assert [(nodes[e["source"]]["name"], e["state"]) for e in declared] == [(lab.bridge, "broken")]
    assert set(topo["layout"]["positions"]) == set(nodes)
    uplinks = [e["source"] for e in topo["edges"] if e["target"] == f"br:{lab.bridge}" and e["kind"] == "port"]
    assert uplinks == [f"link:{lab.uplink}"]


def test_health_metrics_info(server: Server, lab: LabSpec) -> None:
    assert get(server, "/healthz")["status"] == "ok"
    assert get(server, "/api/v1/info")["mutations"] is True
    metrics = call(server.url + "metrics")
    assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert f'vifscope_vif_bound{{domain="{lab.name("broken")}"' in metrics.body.decode()


def test_docs_and_page_need_no_cdn(server: Server) -> None:
    docs = call(server.url + "docs").body.decode()
    assert "cdn" not in docs.lower() and "/static/docs/swagger-ui-bundle.js" in docs
    assert call(server.url + "static/docs/swagger-ui-bundle.js").status == 200
    spec = get(server, "/openapi.json")
    assert {"/api/v1/vifs", "/api/v1/vifs/{domain}", "/api/v1/networks", "/api/v1/findings", "/api/v1/topology",
            "/healthz", "/metrics", "/api/v1/vifs/{domain}/{mac}/fix",
            "/api/v1/vifs/{domain}/{mac}/flows"} <= set(spec["paths"])  # fmt: skip
    page = call(server.url)
    assert page.status == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "graph.js", "table.js", "details.js", "api.js", "flows.js", "style.css"):
        assert call(f"{server.url}static/{asset}").status == 200, asset
    assert "http" not in page.body.decode().replace("http://www.w3.org", "")


def _error(ans: Any, status: int) -> dict[str, Any]:
    assert ans.status == status, (ans.status, ans.body[:300])
    doc: dict[str, Any] = ans.doc
    assert doc["error"] and "Traceback" not in ans.body.decode()
    return doc


def test_bad_input_is_a_clear_4xx(server: Server, lab: LabSpec) -> None:
    base = f"{server.url}api/v1/vifs/{lab.name('web1')}"
    assert "no domain" in _error(call(f"{server.url}api/v1/vifs/vs-g-nope"), 404)["error"]
    assert "MAC" in _error(post(f"{base}/not-a-mac/fix", {}), 422)["hint"]
    assert _error(post(f"{server.url}api/v1/vifs/vs-g-nope/52:54:00:00:00:01/fix", {}), 404)
    big = call(
        f"{base}/52:54:00:00:00:01/fix", "POST", b"{" + b" " * 200_000 + b"}", {"Authorization": f"Bearer {TOKEN}"}
    )
    assert "limit" in _error(big, 413)["error"]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    _error(call(f"{base}/52:54:00:00:00:01/link", "POST", b"{nope", headers), 422)
    assert _error(post(f"{base}/52:54:00:00:00:01/link", {"state": "sideways"}), 422)["hint"]
    assert _error(post(f"{base}/52:54:00:00:00:01/fix", {"surprise": 1}), 422)
    assert "see /docs" in _error(call(f"{server.url}api/v2/nothing"), 404)["hint"]
    assert _error(call(f"{server.url}api/v1/vifs", "DELETE"), 405)


def test_mutations_refuse_without_or_with_a_wrong_token(server: Server, lab: LabSpec, target: Target) -> None:
    mac = lab.guest("broken").nics[0].mac
    url = f"{server.url}api/v1/vifs/{lab.name('broken')}/{mac}/fix"
    for token in (None, "wrong-token-wrong-token", TOKEN + "x", ""):
        ans = post(url, {}, token=token)
        assert _error(ans, 401) and ans.headers["www-authenticate"].startswith("Bearer"), token
    # refused before the body is even read: an invalid body without a token is still 401
    assert call(url, "POST", b"{nope", {"Content-Type": "application/json"}).status == 401
    dry = post(url, {"dry_run": True})
    assert dry.status == 200 and dry.doc["result"] == "dry-run"
    assert [a["kind"] for a in dry.doc["plan"]["actions"]] == ["attach"]
    assert not server.audit_log.exists() or "dry" not in server.audit_log.read_text()
    assert sh("ip", "-j", "link", "show", "dev", target("broken")).find('"master"') == -1  # still detached


def _audit(server: Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.audit_log.read_text().splitlines()]


def test_fix_a_detached_tap_through_the_api(server: Server, lab: LabSpec, target: Target) -> None:
    tap, mac = target("web1"), lab.guest("web1").nics[0].mac
    sh("ip", "link", "set", tap, "nomaster")
    try:
        assert wait_for(lambda: vif_of(get(server, "/api/v1/vifs"), lab.name("web1"))["status"] == "detached")
        ans = post(f"{server.url}api/v1/vifs/{lab.name('web1')}/{mac}/fix", {})
        assert ans.status == 200, ans.body
        assert ans.doc["result"] == "verified"
        assert [(r["kind"], r["verified"]) for r in ans.doc["results"]] == [("attach", True)]
        assert [a["status"] for a in ans.doc["after"]] == ["bound"]
        assert json.loads(sh("ip", "-j", "link", "show", "dev", tap))[0]["master"] == lab.bridge
        lines = [x for x in _audit(server) if x["target"] == tap]
        assert [(x["actor"], x["phase"], x["result"]) for x in lines] == [
            ("api", "apply", "ok"),
            ("api", "verify", "verified"),
        ]
        assert vif_of(get(server, "/api/v1/vifs"), lab.name("web1"))["status"] == "bound"  # cache invalidated
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)


def test_link_state_up_through_the_api(server: Server, lab: LabSpec) -> None:
    dom, mac = lab.name("web1"), lab.guest("web1").nics[0].mac
    sh("virsh", "domif-setlink", dom, mac, "down")
    try:
        assert wait_for(lambda: vif_of(get(server, "/api/v1/vifs"), dom)["link_state"] == "down")
        ans = post(f"{server.url}api/v1/vifs/{dom}/{mac}/link", {"state": "up"})
        assert ans.status == 200 and ans.doc["result"] == "verified", ans.body
        assert vif_of(get(server, f"/api/v1/vifs/{dom}"), dom)["link_state"] == "up"
        assert any(x["action"] == "link-state-up" and x["actor"] == "api" for x in _audit(server))
        again = post(f"{server.url}api/v1/vifs/{dom}/{mac}/link", {"state": "up"})
        assert again.status == 200 and again.doc["result"] == "nothing-to-do"
    finally:
        sh("virsh", "domif-setlink", dom, mac, "up", check=False)


def test_link_state_down_through_the_api_is_verified_and_audited(server: Server, lab: LabSpec) -> None:
    dom, mac = lab.name("web1"), lab.guest("web1").nics[0].mac
    try:
        ans = post(f"{server.url}api/v1/vifs/{dom}/{mac}/link", {"state": "down"})
        assert ans.status == 200 and ans.doc["result"] == "verified", ans.body
        web = vif_of(get(server, f"/api/v1/vifs/{dom}"), dom)
        assert (web["link_state"], web["status"]) == ("down", "down")
        assert "link_state_down" in web["problems"]
        assert any(x["action"] == "link-state-down" and x["actor"] == "api" for x in _audit(server))
    finally:
        sh("virsh", "domif-setlink", dom, mac, "up", check=False)


def _schemathesis(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}openapi.json", "--no-color"]
    cmd += ["--exclude-path", "/api/v1/events", "-n", "25", "--request-timeout", "30", "--generation-deterministic"]
    # Free-form domain names: "1.5" or "" is a valid (unknown) domain, so "negative" query
    # values are rightly accepted; every other check runs.
    cmd += ["--exclude-checks", "negative_data_rejection", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=500, check=False)


def test_schemathesis_finds_no_500s_on_the_lab(server: Server) -> None:
    """No token: every read endpoint for real, every POST refused (401) whatever the body."""
    run = _schemathesis(server.url)
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout and "ST101" not in run.stdout


def test_schemathesis_with_the_token_on_the_test_driver(tmp_path: Path) -> None:
    """With the token, the POST bodies are exercised too: against libvirt's test driver, so
    random requests can never touch a real guest."""
    with serve(tmp_path, "-c", "test:///default") as srv:
        run = _schemathesis(srv.url, "-H", f"Authorization: Bearer {TOKEN}")
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout and "ST101" not in run.stdout


def test_refuses_a_non_loopback_address_without_a_token(lab: LabSpec) -> None:
    res = vifscope("serve", "--listen", "0.0.0.0:0")
    assert res.rc == 2 and "without an API token" in res.err and "hint:" in res.err


def test_graph_dot_renders_with_graphviz(lab: LabSpec, tmp_path: Path) -> None:
    res = vifscope("graph", "--format", "dot")
    assert res.rc == 1, res.err  # the lab has a detached vif
    svg = subprocess.run(["dot", "-Tsvg"], input=res.out, capture_output=True, text=True, timeout=60, check=False)
    assert svg.returncode == 0, svg.stderr
    (tmp_path / "lab.svg").write_text(svg.stdout)
    texts = [t.text or "" for t in ElementTree.fromstring(svg.stdout).iter("{http://www.w3.org/2000/svg}text")]
    assert f"{lab.name('broken')} (running)" in texts and f"{lab.bridge} (up)" in texts
    mermaid = vifscope("graph", "-d", lab.name("web1"))
    assert mermaid.out.startswith("flowchart LR") and lab.name("broken") not in mermaid.out
    doc = vifscope("graph", "--json").doc
    assert any(n["domain"] == lab.name("broken") and n["status"] == "detached" for n in doc["nodes"])
