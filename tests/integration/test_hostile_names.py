"""Hostile names on real kernel objects and libvirt's test driver (hostile_host.py), through
every front end, each run as a user would inside the namespace:

status (table and JSON), doctor (every printed fix one shell line with its exact words),
graph (mermaid, DOT rendered by Graphviz), the exporter's exposition (parsed back: the label
values are the names), doctor --fix and the API's heal (the audit log keeps every name), and
no name ever reaches a shell (``$(touch vs-h-pwned)`` in a domain name never runs).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.hostile_host import API_HEAL, BR, BR2, D1, D2, MAC, NET, T1, T2, T3, HostileHost, hostile_host
from vifscope.actions import read_records

pytestmark = pytest.mark.integration
NAMES = {D1: (T1, T2), D2: (T3,)}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileHost]:
    with hostile_host(tmp_path_factory.mktemp("vs-h-names"), "names") as h:
        h.detach(T1)  # one fault, so doctor and --fix have work
        yield h
        assert not h.pwned()


def test_status_reads_every_name_back(host: HostileHost) -> None:
    ran = host.vifscope("status", "--json")
    assert ran.rc == 1, ran.err  # T1 detached
    got = {(v["domain"], v["target"], v["bridge"], v["status"]) for v in ran.doc["vifs"]}
    assert got == {(D1, T1, BR, "detached"), (D1, T2, BR, "bound"), (D2, T3, BR2, "bound")}
    assert {v["network"] for v in ran.doc["vifs"]} == {None, NET}
    wide = host.vifscope("status")  # COLUMNS=300: no name is folded
    assert all(name in wide.out for name in (D1, D2, T1, T2, T3)), wide.out


def test_every_doctor_fix_is_one_shell_line_of_its_exact_words(host: HostileHost) -> None:
    ran = host.vifscope("doctor", "--json")
    assert ran.rc in (0, 1), ran.err
    fixes = [f for f in ran.doc["findings"] if f["fix_argv"]]
    assert fixes, "the detached tap has a fix"
    for f in fixes:
        subprocess.run(["/bin/sh", "-n", "-c", f["fix"]], check=True)
        words = shlex.split(f["fix"], comments=True)
        assert words == [w for i, argv in enumerate(f["fix_argv"]) for w in ([f["fix_chain"]] if i else []) + argv]
    assert {f["domain"] for f in ran.doc["findings"] if f["domain"]} <= {D1, D2}


def test_graph_mermaid_and_dot_keep_the_names(host: HostileHost) -> None:
    mermaid = host.vifscope("graph").out.splitlines()
    assert mermaid[0] == "flowchart LR"
    labels = [
        re.sub(r"#(\d+);", lambda c: chr(int(c.group(1))), m.group(1))
        for line in mermaid
        if (m := re.match(r'^  n\d+\W+"([^"]*)"', line))
    ]
    for name in (D1, D2, T1, T2, T3, BR, NET):  # a network node stands for its bridge
        assert any(label.startswith(f"{name} (") for label in labels), (name, labels)
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is installed by make setup-test")
    dot = host.vifscope("graph", "--format", "dot").out
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60, check=True)
    texts = {t.text or "" for t in ElementTree.fromstring(svg.stdout).iter("{http://www.w3.org/2000/svg}text")}
    assert {f"{D1} (running)", f"{D2} (running)", f"{T1} (detached)", f"{NET} (up)"} <= texts


def test_exporter_labels_are_the_names(host: HostileHost) -> None:
    ran = host.vifscope("exporter", "--once", "--no-checks", "--audit-log", str(host.dir / "none.jsonl"))
    assert ran.rc == 0, ran.err
    samples = [s for fam in text_string_to_metric_families(ran.out) for s in fam.samples]
    bound = {
        (s.labels["domain"], s.labels["target"], s.labels["bridge"]): s.value
        for s in samples
        if s.name == "vifscope_vif_bound"
    }
    assert bound == {(D1, T1, BR): 0.0, (D1, T2, BR): 1.0, (D2, T3, BR2): 1.0}


def test_fix_and_the_api_heal_log_every_name_intact(host: HostileHost) -> None:
    """doctor --fix re-plugs T1; T1 is unplugged again and the API heals it by its domain's
    name in the URL path (percent-encoded): both audit-logged with the names as they are."""
    audit = host.dir / "actions.jsonl"
    ran = host.vifscope("doctor", "--fix", "--yes", "--json", "--audit-log", str(audit))
    assert ran.rc == 0 and ran.doc["result"] == "verified", ran.err
    host.detach(T1)
    token = "vs-h-" + "0123456789abcdef" * 2
    (host.dir / "token").write_text(token)
    (host.dir / "token").chmod(0o600)
    serve = subprocess.Popen(
        [
            *host.vifscope_argv("serve", "--json", "--listen", "127.0.0.1:0"),
            *("--token-file", str(host.dir / "token"), "--audit-log", str(audit)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=host.dir,
        env=host.env(),
    )
    try:
        assert serve.stdout is not None
        url = json.loads(serve.stdout.readline())["url"]
        healed = host.python(API_HEAL, url, token, D1, MAC[T1])
    finally:
        serve.terminate()
        _, err = serve.communicate(timeout=30)
    assert healed.rc == 0, (healed.err, err)
    status, doc = json.loads(healed.out)
    assert status == 200 and doc["result"] == "verified", (doc, err)
    assert host.master(T1) == BR
    records = read_records(audit)
    assert [(r.actor, r.phase, r.domain, r.target) for r in records if r.phase == "apply"] == [
        ("doctor-fix", "apply", D1, T1),
        ("api", "apply", D1, T1),
    ]
    assert token not in err
