"""A small real host with hostile names, in a private network namespace.

Kernel side (netns ``vs-h-<tag>``): two Linux bridges and three taps held open the way QEMU
holds them (vifscope.lab.tapholder: real carrier), all named with characters a shell treats
as syntax. libvirt side: the test driver (``test:///…/node.xml``) with two running domains
and a network whose names hold spaces, quotes, ``$(…)``, backticks, a leading ``-``, markup
and unicode. vifscope runs inside the namespace (``ip netns exec``) with its working directory
in the test's tmp dir, so a name that ever reached a shell would leave ``vs-h-pwned`` there.

The kernel refuses whitespace, ``/`` and ``:`` in interface names, and any byte 0xA0 (its
isspace() is Latin-1: "à" is C3 A0 in UTF-8 and is refused, "ü" is C3 BC and is accepted);
libvirt refuses only ``/`` in domain names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parents[2]
BR = "vs-h-b$(id)"
BR2 = "vs-h-<i>&"
T1 = "vs-h-t;`x`"
T2 = "vs-h-t'\"ü"
T3 = "-vs-h-t$(id)"
D1 = "vs-h web $(touch vs-h-pwned) `id` 'q\""
D2 = "-vs-h-<img src=x onerror=alert(1)>&ü"
NET = 'vs-h net $(id) "q'
MAC = {T1: "52:54:00:48:00:01", T2: "52:54:00:48:00:02", T3: "52:54:00:48:00:03"}
PWNED = "vs-h-pwned"


# A client run inside the namespace: POST heal for DOMAIN (percent-encoded) and MAC with a
# bearer token; prints [status, answer].
API_HEAL = """
import json, sys, urllib.parse, urllib.request, urllib.error
url, token, domain, mac = sys.argv[1:5]
path = f"api/v1/vifs/{urllib.parse.quote(domain, safe='')}/{mac}/heal"
req = urllib.request.Request(url + path, data=b"{}", method="POST",
    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=60) as r:
        print(json.dumps([r.status, json.load(r)]))
except urllib.error.HTTPError as e:
    print(json.dumps([e.code, json.load(e)]))
"""


def node_xml() -> str:
    def iface(tap: str, source: str) -> str:
        kind, attr = ("network", "network") if source == NET else ("bridge", "bridge")
        return (
            f"<interface type='{kind}'><mac address='{MAC[tap]}'/><source {attr}={quoteattr(source)}/>"
            f"<target dev={quoteattr(tap)}/></interface>"
        )

    def domain(i: int, name: str, ifaces: str) -> str:
        return (
            f"<domain type='test'><name>{escape(name)}</name><uuid>11111111-2222-3333-4444-00000000000{i}</uuid>"
            f"<memory>65536</memory><os><type>hvm</type></os><devices>{ifaces}</devices></domain>"
        )

    net = (
        f"<network><name>{escape(NET)}</name><uuid>11111111-2222-3333-4444-555555555555</uuid>"
        f"<bridge name={quoteattr(BR2)}/></network>"
    )
    return f"<node>{net}{domain(1, D1, iface(T1, BR) + iface(T2, BR))}{domain(2, D2, iface(T3, NET))}</node>\n"


@dataclass(frozen=True)
class Ran:
    rc: int
    out: str
    err: str

    @property
    def doc(self) -> Any:
        return json.loads(self.out)


@dataclass(frozen=True)
class HostileHost:
    ns: str
    dir: Path  # node.xml, the audit log, the working directory of every vifscope run

    @property
    def uri(self) -> str:
        return f"test://{self.dir / 'node.xml'}"

    def env(self) -> dict[str, str]:
        # COLUMNS: rich tables wide enough that no name is folded over two lines
        return {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT), "COLUMNS": "300"}

    def run(self, *argv: str, timeout: float = 120) -> Ran:
        """Any command inside the namespace, cwd in the test's directory."""
        cmd = ["ip", "netns", "exec", self.ns, *argv]
        p = subprocess.run(cmd, cwd=self.dir, env=self.env(), capture_output=True, text=True, timeout=timeout)
        return Ran(p.returncode, p.stdout, p.stderr)

    def vifscope_argv(self, *argv: str) -> list[str]:
        """The argv that runs vifscope inside the namespace (for a long-running one)."""
        return ["ip", "netns", "exec", self.ns, sys.executable, "-m", "vifscope", "-c", self.uri, *argv]

    def vifscope(self, *argv: str, timeout: float = 120) -> Ran:
        return self.run(sys.executable, "-m", "vifscope", "-c", self.uri, *argv, timeout=timeout)

    def python(self, code: str, *args: str) -> Ran:
        return self.run(sys.executable, "-c", code, *args)

    def ip(self, *argv: str) -> None:
        subprocess.run(["ip", "-n", self.ns, *argv], check=True, capture_output=True)

    def links(self) -> dict[str, dict[str, Any]]:
        out = subprocess.run(["ip", "-n", self.ns, "-j", "link", "show"], check=True, capture_output=True, text=True)
        return {link["ifname"]: link for link in json.loads(out.stdout)}

    def master(self, link: str) -> str | None:
        m = self.links()[link].get("master")
        return str(m) if m is not None else None

    def detach(self, *links: str) -> None:
        for link in links:
            self.ip("link", "set", "dev", link, "nomaster")

    def pwned(self) -> bool:
        return (self.dir / PWNED).exists()


@contextmanager
def hostile_host(tmp: Path, tag: str) -> Iterator[HostileHost]:
    """Build the host; everything goes with the namespace at the end (also on failure)."""
    ns = f"vs-h-{tag}"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    host = HostileHost(ns, tmp)
    (tmp / "node.xml").write_text(node_xml())
    (tmp / "taps").write_text("\n".join((T1, T2, T3)) + "\n")
    holder: subprocess.Popen[str] | None = None
    try:
        holder = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "vifscope.lab.tapholder", str(tmp / "taps")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=host.env(),
        )
        assert holder.stdout is not None and holder.stdout.readline().startswith("ready"), "tapholder failed"
        host.ip("link", "set", "dev", "lo", "up")  # for a server inside the namespace
        for br in (BR, BR2):
            host.ip("link", "add", "name", br, "type", "bridge")
            host.ip("link", "set", "dev", br, "up")
        for tap, br in ((T1, BR), (T2, BR), (T3, BR2)):
            host.ip("link", "set", "dev", tap, "master", br)
            host.ip("link", "set", "dev", tap, "up")
        yield host
    finally:
        if holder is not None:
            holder.terminate()
            holder.wait(timeout=30)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
