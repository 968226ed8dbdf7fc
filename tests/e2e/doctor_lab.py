"""Helpers for the doctor end-to-end tests: run doctor (optionally inside a network or mount
namespace), pick findings, hot-plug a NIC for the length of a test, make scratch objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.conftest import sh

VIRSH = ("virsh", "-q", "-c", "qemu:///system")


@dataclass
class Doc:
    rc: int
    doc: dict[str, Any]
    err: str

    def find(self, check: str, domain: str | None = None, subject: str | None = None) -> list[dict[str, Any]]:
        return [
            f
            for f in self.doc["findings"]
            if f["check"] == check
            and (domain is None or f["domain"] == domain)
            and (subject is None or f["subject"] == subject)
        ]

    def one(self, check: str, domain: str | None = None, subject: str | None = None) -> dict[str, Any]:
        found = self.find(check, domain, subject)
        assert len(found) == 1, f"{check} {domain} {subject}: {found or [f['check'] for f in self.doc['findings']]}"
        return found[0]

    def checks(self, domain: str | None = None) -> set[str]:
        return {f["check"] for f in self.doc["findings"] if domain is None or f["domain"] == domain}


def doctor(*args: str, prefix: Sequence[str] = ()) -> Doc:
    """``vifscope doctor --json ARGS`` as a separate process (optionally under ``prefix``)."""
    cmd = [*prefix, sys.executable, "-m", "vifscope", "doctor", "--json", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ))
    assert proc.stdout.strip(), f"doctor printed nothing (rc {proc.returncode}): {proc.stderr}"
    return Doc(proc.returncode, json.loads(proc.stdout), proc.stderr)


def in_netns(ns: str) -> tuple[str, ...]:
    return ("ip", "netns", "exec", ns)


def in_mount_ns(*mounts: str) -> tuple[str, ...]:
    """A private mount namespace with the given mount commands applied first (host unchanged)."""
    script = " && ".join([*mounts, 'exec "$@"'])
    return ("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh")


@contextmanager
def netns(name: str) -> Iterator[str]:
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def _xml_file(text: str) -> Path:
    fd, path = tempfile.mkstemp(prefix="vs-d-", suffix=".xml")
    os.write(fd, text.encode())
    os.close(fd)
    return Path(path)


@contextmanager
def hotplug(domain: str, iface_xml: str) -> Iterator[None]:
    """Attach an <interface> to a running domain for the test, detach it afterwards."""
    path = _xml_file(iface_xml)
    try:
        sh(*VIRSH, "attach-device", domain, str(path), "--live")
        try:
            yield
        finally:
            sh(*VIRSH, "detach-device", domain, str(path), "--live", check=False)
    finally:
        path.unlink()


@contextmanager
def defined(kind: str, name: str, xml: str, *, start: bool = False) -> Iterator[None]:
    """A scratch domain or network ("dom" / "net"), removed afterwards even when the test fails."""
    path = _xml_file(xml)
    prefix = "" if kind == "dom" else "net-"
    try:
        sh(*VIRSH, f"{prefix}define", str(path))
        try:
            if start:
                sh(*VIRSH, f"{prefix}start", name)
            yield
        finally:
            sh(*VIRSH, f"{prefix}destroy", name, check=False)
            sh(*VIRSH, f"{prefix}undefine", name, check=False)
    finally:
        path.unlink()


def run_fix(finding: dict[str, Any]) -> None:
    """Run a finding's fix command exactly as doctor printed it."""
    assert finding["fix"], finding
    proc = subprocess.run(["sh", "-c", finding["fix"]], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"fix {finding['fix']!r} failed: {proc.stderr}"


def lease_ip(network: str, mac: str) -> str | None:
    for line in sh(*VIRSH, "net-dhcp-leases", network).splitlines():
        words = line.split()
        if mac in words:
            return next((w.split("/")[0] for w in words if "/" in w and w[0].isdigit()), None)
    return None


def link_attr(name: str, key: str) -> Any:
    return json.loads(sh("ip", "-j", "-d", "link", "show", name))[0].get(key)


def nic_xml(mac: str, source: str, *, kind: str = "bridge", target: str | None = None, extra: str = "") -> str:
    """An <interface> for hot-plugging: type bridge / network / direct (bridge mode), virtio."""
    src = {"bridge": f"bridge='{source}'", "network": f"network='{source}'", "direct": f"dev='{source}' mode='bridge'"}
    tgt = f"<target dev='{target}'/>" if target else ""
    return (
        f"<interface type='{kind}'><mac address='{mac}'/><source {src[kind]}/>{tgt}"
        f"<model type='virtio'/>{extra}</interface>"
    )
