"""A two-namespace traffic lab for vifscope's tc backend: namespace ``A`` plays the host, ``B``
the guest. Each pair is a veth: its ``A`` end plays the tap (what vifscope shapes), its ``B``
end the guest's NIC. A libvirt test-driver node file declares one running domain per pair,
its interface's target the ``A`` end, so ``vifscope -c test:///node.xml qos set`` run inside
``A`` shapes a real link. iperf3 measures: from ``A`` to ``B`` is the guest's inbound, from
``B`` to ``A`` its outbound.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

DOMAIN = """  <domain type='test'>
    <name>{name}</name>
    <uuid>7d3e8c2a-1b4f-4c6d-9e8f-0a1b2c3d{i:04x}</uuid>
    <memory>65536</memory>
    <os><type>hvm</type></os>{metadata}
    <devices>
      <interface type='ethernet'>
        <mac address='{mac}'/>
        <target dev='{tap}'/>
      </interface>
    </devices>
  </domain>
"""


def _received(out: str) -> float | None:
    """The receiver's bits/s of an ``iperf3 -J`` report (None: it reports an error instead)."""
    try:
        return float(json.loads(out)["end"]["sum_received"]["bits_per_second"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Pair:
    """One vif: the domain, its MAC, the tap end (in A), the guest end (in B), their addresses."""

    domain: str
    mac: str
    tap: str
    guest: str
    host_ip: str
    guest_ip: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class QosLink:
    """``pairs`` veth pairs between ``{prefix}a`` and ``{prefix}b``; addresses ``{net}.{n}.1/.2``."""

    prefix: str
    net: str
    pairs_wanted: int = 2
    workdir: Path = Path("/tmp")

    def __post_init__(self) -> None:
        p = self.prefix
        self.ns_a, self.ns_b = f"{p}a", f"{p}b"
        self.pairs = [
            Pair(
                f"{p}d{n}", f"52:54:00:90:00:{n:02x}", f"{p}t{n}", f"{p}g{n}", f"{self.net}.{n}.1", f"{self.net}.{n}.2"
            )
            for n in range(1, self.pairs_wanted + 1)
        ]
        self.node = self.workdir / f"{p}node.xml"

    def write_node(self, metadata: dict[str, str] | None = None) -> str:
        """The node file (``metadata``: domain -> an inner ``<metadata>`` element) and its URI."""
        meta = metadata or {}
        doms = [
            DOMAIN.format(name=x.domain, i=i, mac=x.mac, tap=x.tap,
                          metadata=f"\n    <metadata>{meta[x.domain]}</metadata>" if x.domain in meta else "")
            for i, x in enumerate(self.pairs)
        ]  # fmt: skip
        self.node.write_text("<node>\n" + "".join(doms) + "</node>\n")
        return f"test://{self.node}"

    def remember(self, *set_docs: dict[str, Any]) -> str:
        """Rewrite the node file with the metadata ``qos set --json`` runs wrote (their ``virsh
        metadata --set`` arguments -- rates and DSCP marks -- namespaced): the test driver keeps
        changes per connection only, so the next process would otherwise not see them. Returns
        the URI."""
        meta: dict[str, str] = {}
        for doc in set_docs:
            for text in (*doc.get("commands", ()), *(doc.get("dscp") or {}).get("commands", ())):
                argv = shlex.split(text)
                if "metadata" in argv and "--set" in argv:
                    domain, ns = argv[argv.index("--") + 1 : argv.index("--") + 3]
                    elem = argv[argv.index("--set") + 1]
                    tag = elem[1:].split(">", 1)[0].split(" ", 1)[0]
                    meta[domain] = meta.get(domain, "") + elem.replace(f"<{tag}", f"<{tag} xmlns='{ns}'", 1)
        return self.write_node(meta)

    def __enter__(self) -> QosLink:
        try:
            for ns in (self.ns_a, self.ns_b):
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            for x in self.pairs:
                self._plug(x)
        except BaseException:
            self.close()
            raise
        return self

    def _plug(self, x: Pair) -> None:
        _ip("-n", self.ns_a, "link", "add", x.tap, "type", "veth", "peer", "name", x.guest, "netns", self.ns_b)
        _ip("-n", self.ns_a, "addr", "add", f"{x.host_ip}/24", "dev", x.tap)
        _ip("-n", self.ns_b, "addr", "add", f"{x.guest_ip}/24", "dev", x.guest)
        _ip("-n", self.ns_a, "link", "set", x.tap, "up")
        _ip("-n", self.ns_b, "link", "set", x.guest, "up")

    def recreate(self, x: Pair) -> None:
        """The pair deleted and made again, same names: what a domain restart does to a tap
        (a new ifindex, none of its qdiscs)."""
        _ip("-n", self.ns_a, "link", "del", x.tap)
        self._plug(x)

    def close(self) -> None:
        for ns in (self.ns_a, self.ns_b):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        self.node.unlink(missing_ok=True)

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def vifscope(self, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``vifscope -c URI ARGS`` inside ``A`` (where the taps are)."""
        cmd = ["ip", "netns", "exec", self.ns_a, sys.executable, "-m", "vifscope", "-c", uri, *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)

    def iperf(self, pair: Pair, *, inbound: bool, seconds: float, port: int = 5201) -> float:
        """Bits/s the receiver got over ``seconds`` of one TCP stream: ``inbound`` A->B (the
        guest receives), else B->A (the guest sends)."""
        server_ns, client_ns, server_ip = (
            (self.ns_b, self.ns_a, pair.guest_ip) if inbound else (self.ns_a, self.ns_b, pair.host_ip)
        )
        server = subprocess.Popen(
            ["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B", server_ip, "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            out = ""
            client = ["ip", "netns", "exec", client_ns, "iperf3", "-c", server_ip, "-p", str(port)]
            for _attempt in range(50):  # until the server listens
                proc = subprocess.run(
                    [*client, "-t", str(seconds), "-J"],
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=seconds + 60,
                )
                out = proc.stdout
                got = _received(out) if proc.returncode == 0 else None
                if got is not None:
                    return got
                time.sleep(0.1)
            raise RuntimeError(f"iperf3 failed: {out[-300:]}")
        finally:
            server.kill()
            server.wait()
