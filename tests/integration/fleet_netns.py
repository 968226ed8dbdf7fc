"""A test fleet of "hosts" that are network namespaces: each has a synthetic host's bridge and
held taps (``vifscope.lab.synth``), its own libvirt test-driver node file, and a
``vifscope serve`` agent running inside it, reachable from the hub over a veth plugged into a
test bridge in the root namespace. Everything is removed even when the test fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.fleet_agents import _stop
from vifscope.lab.synth import SynthHost, plan

PREFIX = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-fn-")
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.79")
PORT = 8777


@dataclass
class NetnsHost:
    name: str  # "h1": also the inventory name
    netns: str
    synth: SynthHost
    address: str  # the agent's address on the test bridge
    url: str
    proc: subprocess.Popen[str]

    def mac(self, domain: int, nic: int) -> str:
        return host_mac(int(self.name[1:]), domain, nic)


def host_mac(n: int, domain: int, nic: int) -> str:
    """synth numbers MACs 52:54:00:00:DD:NN on every host alike; the fleet gives host n 52:54:0n."""
    return f"52:54:{n:02x}:00:{domain:02x}:{nic:02x}"


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


@contextmanager
def hub_bridge() -> Iterator[str]:
    """The root namespace's end: a bridge with the hub's address, every host's veth on it."""
    br = f"{PREFIX}br"
    _ip("link", "del", br, check=False)  # a leftover of a killed run
    _ip("link", "add", br, "type", "bridge")
    try:
        _ip("addr", "add", f"{NET}.0.1/24", "dev", br)
        _ip("link", "set", br, "up")
        yield br
    finally:
        _ip("link", "del", br, check=False)


def _rewrite_macs(node: Path, n: int, same_as: dict[str, str]) -> None:
    """Give host n its own MACs (then the deliberate duplicates: ``same_as`` old -> new)."""
    text = node.read_text().replace("address='52:54:00:", f"address='52:54:{n:02x}:")
    for old, new in same_as.items():
        text = text.replace(f"address='{old}'", f"address='{new}'")
    node.write_text(text)


def _plug(netns: str, n: int, br: str) -> str:
    """A veth from the namespace to the hub's bridge; returns the host's address."""
    outer, inner, addr = f"{PREFIX}v{n}", f"{PREFIX}p{n}", f"{NET}.0.{10 + n}"
    _ip("link", "del", outer, check=False)
    _ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", netns)
    _ip("link", "set", outer, "master", br, "up")
    _ip("-n", netns, "addr", "add", f"{addr}/24", "dev", inner)
    _ip("-n", netns, "link", "set", inner, "up")
    _ip("-n", netns, "link", "set", "lo", "up")
    return addr


@contextmanager
def _agent(
    netns: str, node: Path, addr: str, name: str, token: Path, workdir: Path
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    cmd = ["ip", "netns", "exec", netns, sys.executable, "-m", "vifscope", "-c", f"test://{node}", "serve", "--json"]
    cmd += ["--listen", f"{addr}:{PORT}", "--host-id", f"id-{name}", "--read-token-file", str(token)]
    cmd += ["--audit-log", str(workdir / f"{name}.audit"), "--interval", "0.5"]
    # ip netns exec execs the command: this pid is the agent's, for SIGSTOP and kill
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"serve did not start in {netns}: {proc.stderr.read() if proc.stderr else ''}"
        yield json.loads(line)["url"], proc
    finally:
        _stop(proc)


@contextmanager
def netns_fleet(
    workdir: Path,
    count: int,
    token: Path,
    same_as: dict[int, dict[str, str]],
    neighbours: dict[int, list[tuple[str, str]]],
) -> Iterator[dict[str, NetnsHost]]:
    """``count`` hosts h1..hN of 2 domains x 2 vifs, all bound. ``same_as[n]``: MACs host n
    takes over (old -> new); ``neighbours[n]``: (ip, mac) neighbour entries put on host n's
    bridge, as the kernel learns them when a guest talks."""
    with ExitStack() as stack:
        br = stack.enter_context(hub_bridge())
        hosts: dict[str, NetnsHost] = {}
        for n in range(1, count + 1):
            name, netns = f"h{n}", f"{PREFIX}h{n}"
            _ip("netns", "del", netns, check=False)
            p = plan(2, 2, bridges=1, fault_every=10**6, shutoff_every=10**6, prefix=netns)
            synth = stack.enter_context(SynthHost(p, netns, workdir))
            _rewrite_macs(synth.node_file, n, same_as.get(n, {}))
            for ip, mac in neighbours.get(n, []):
                _ip("-n", netns, "neigh", "replace", ip, "lladdr", mac, "dev", p.bridges[0], "nud", "permanent")
            addr = _plug(netns, n, br)
            url, proc = stack.enter_context(_agent(netns, synth.node_file, addr, name, token, workdir))
            hosts[name] = NetnsHost(name, netns, synth, addr, url, proc)
        yield hosts
