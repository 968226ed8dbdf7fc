"""A host for ``vifscope flows`` with real traffic and no guest CPU to wait for (the flows
tests and bench/flows.py).

Netns ``<P>fh`` plays the host: a Linux bridge and two veths whose host ends play the taps of
two running domains of libvirt's test driver (node.xml: each vif's MAC is the MAC of its
"guest" end, so peers are named). The guests are netns ``<P>g1`` / ``<P>g2`` holding the veths'
other ends with addresses NET.41.1 / NET.41.2 (``P``, ``NET``: the caller's prefix and /16).
vifscope runs inside the host netns, so its TCX links attach there (bpffs is not needed:
nothing is pinned).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[2]
MACS = ("52:54:00:f1:00:01", "52:54:00:f1:00:02")


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=check).stdout


@dataclass(frozen=True)
class FlowHost:
    ns: str
    bridge: str
    taps: tuple[str, str]
    guests: tuple[str, str]  # guest netns names
    domains: tuple[str, str]
    addrs: tuple[str, str]
    dir: Path

    @property
    def uri(self) -> str:
        return f"test://{self.dir / 'node.xml'}"

    def vifscope_argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, sys.executable, "-m", "vifscope", "-c", self.uri, *argv]

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "250"}

    def in_guest(self, i: int, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.guests[i], *argv], capture_output=True, text=True, timeout=timeout
        )

    def in_host(self, *argv: str) -> str:
        return sh("ip", "netns", "exec", self.ns, *argv)

    def tc_json(self, *argv: str) -> Any:
        return json.loads(self.in_host("tc", "-j", "-s", *argv) or "[]")


def node_xml(h: FlowHost) -> str:
    doms = []
    for i, (dom, tap, mac) in enumerate(zip(h.domains, h.taps, MACS, strict=True)):
        doms.append(
            f"<domain type='test'><name>{dom}</name><uuid>f1f1f1f1-0000-4000-8000-00000000000{i}</uuid>"
            f"<memory>65536</memory><os><type>hvm</type></os><devices><interface type='bridge'>"
            f"<mac address='{mac}'/><source bridge='{h.bridge}'/><target dev='{tap}'/></interface>"
            f"</devices></domain>"
        )
    return f"<node>{''.join(doms)}</node>\n"


def _teardown(h: FlowHost) -> None:
    for ns in (h.ns, *h.guests):
        sh("ip", "netns", "del", ns, check=False)


@contextmanager
def flow_host(tmp: Path, prefix: str, net: str) -> Iterator[FlowHost]:
    """The host and guests built (removed first if a previous run left them), torn down after."""
    p = prefix
    h = FlowHost(
        ns=f"{p}fh", bridge="br0", taps=(f"{p}t1", f"{p}t2"), guests=(f"{p}g1", f"{p}g2"),
        domains=(f"{p}a", f"{p}b"), addrs=(f"{net}.41.1", f"{net}.41.2"), dir=tmp,
    )  # fmt: skip
    _teardown(h)  # a previous run's leftovers, ours by name
    try:
        sh("ip", "netns", "add", h.ns)
        host = ("ip", "-n", h.ns)
        sh(*host, "link", "add", h.bridge, "type", "bridge")
        sh(*host, "link", "set", h.bridge, "up")
        sh(*host, "link", "set", "lo", "up")  # an exporter inside listens on its own loopback
        for tap, guest, addr, mac in zip(h.taps, h.guests, h.addrs, MACS, strict=True):
            sh("ip", "netns", "add", guest)
            sh(*host, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", guest)
            sh(*host, "link", "set", tap, "master", h.bridge, "up")
            sh("ip", "-n", guest, "link", "set", "eth0", "address", mac, "up")
            sh("ip", "-n", guest, "link", "set", "lo", "up")
            sh("ip", "-n", guest, "addr", "add", f"{addr}/24", "dev", "eth0")
        (tmp / "node.xml").write_text(node_xml(h))
        yield h
    finally:
        _teardown(h)


def bpftool(*argv: str) -> list[dict[str, Any]]:
    """bpftool's JSON list; retried: a program or link freed mid-dump makes bpftool fail."""
    err = ""
    for _ in range(20):
        p = subprocess.run(["bpftool", "-j", *argv], capture_output=True, text=True)
        got = json.loads(p.stdout or "[]") if p.returncode == 0 else None
        if isinstance(got, list):  # bpftool prints {"error": ...} when an object went mid-dump
            return got
        err = p.stderr or p.stdout
        time.sleep(0.05)
    raise AssertionError(f"bpftool {' '.join(argv)} kept failing: {err}")


def vifscope_programs() -> list[dict[str, Any]]:
    """vifscope's flow programs loaded anywhere on the host (bpftool's view)."""
    progs = bpftool("prog", "show")
    return [p for p in progs if str(p.get("name", "")).startswith("vifscope_fl")]


def vifscope_links() -> list[dict[str, Any]]:
    """BPF links (TCX: type 11 to bpftool 7.1, which cannot name it) of vifscope's programs."""
    ids = {p["id"] for p in vifscope_programs()}
    links = bpftool("link", "show")
    return [link for link in links if link.get("prog_id") in ids]
