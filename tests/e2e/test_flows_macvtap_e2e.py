"""``vifscope flows`` on a real TCG guest behind a macvtap (``<interface type='direct'>`` on a
veth whose peer sits in a namespace): the program attaches to the macvtap device like to a tap,
and directions are the guest's although a macvtap carries them the other way round from a tap
(the guest's frames leave through its transmit path). The traffic is one-sided on purpose: the
namespace answers no echo request, so the guest's 4 requests (100 bytes) go out unanswered,
and the namespace's 3 requests (56 bytes) come in and the guest's 3 replies go out: 7 ICMP
packets out, 3 in — a swap would read 3 out, 7 in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from vifscope.lab.guestxml import guest_domain_xml
from vifscope.lab.image import build_guest_image
from vifscope.lab.lab import GUEST_CACHE

pytestmark = pytest.mark.e2e
URI = "qemu:///system"
P = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78")
DOM, NS, LOWER, PEER = f"{P}mvg", f"{P}mvns", f"{P}mv0", f"{P}mv1"
HOST_IP, GUEST_IP = f"{NET}.10.1", f"{NET}.10.11"


def run(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=check).stdout


def _teardown() -> None:
    run("virsh", "-c", URI, "destroy", DOM, check=False)
    run("virsh", "-c", URI, "undefine", DOM, check=False)
    run("ip", "link", "del", LOWER, check=False)
    run("ip", "netns", "del", NS, check=False)


def _wait_console(fd: int, mark: str, poke: bytes, seconds: float) -> None:
    seen, end, last = "", time.monotonic() + seconds, 0.0
    while time.monotonic() < end:
        if time.monotonic() - last > 5:
            os.write(fd, poke)
            last = time.monotonic()
        try:
            seen = (seen + os.read(fd, 4096).decode(errors="replace"))[-5000:]
        except BlockingIOError:
            time.sleep(0.2)
        if mark in seen:
            return
    raise TimeoutError(f"{DOM}: no {mark!r} on the console: {seen[-300:]!r}")


@pytest.fixture(scope="module")
def console() -> Iterator[int]:
    """The booted guest's serial console (a root shell), the guest reaching the namespace."""
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests need root (they boot a guest)")
    _teardown()
    fd = -1
    try:
        run("ip", "link", "add", LOWER, "type", "veth", "peer", "name", PEER)
        run("ip", "netns", "add", NS)
        run("ip", "link", "set", PEER, "netns", NS)
        run("ip", "link", "set", LOWER, "up")
        run("ip", "-n", NS, "addr", "add", f"{HOST_IP}/24", "dev", PEER)
        run("ip", "-n", NS, "link", "set", PEER, "up")
        nic = (
            f"<interface type='direct'><mac address='52:54:00:f1:0a:01'/><source dev='{LOWER}' mode='bridge'/>"
            "<model type='virtio'/></interface>"
        )
        path = Path(f"/tmp/{DOM}.xml")
        path.write_text(
            guest_domain_xml(DOM, build_guest_image(GUEST_CACHE), [nic], cmdline_extra=f"vs.ip0={GUEST_IP}/24")
        )
        try:
            run("virsh", "-c", URI, "define", str(path))
        finally:
            path.unlink(missing_ok=True)  # libvirt keeps the definition
        run("virsh", "-c", URI, "start", DOM)
        fd = os.open(run("virsh", "-c", URI, "ttyconsole", DOM).strip(), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd)
        _wait_console(fd, "VS-OK", f"ping -c1 -W1 {HOST_IP} >/dev/null && echo VS-OK\n".encode(), 300)
        yield fd
    finally:
        if fd >= 0:
            os.close(fd)
        _teardown()


def test_macvtap_guest_icmp_both_directions(console: int) -> None:
    cmd = [sys.executable, "-m", "vifscope", "-c", URI, "flows", DOM, "--json", "--interval", "8", "--by", "proto"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = next((ln for ln in proc.stderr if ln.startswith("flows: collecting")), "")
    assert "on 1 taps" in line, line
    ignore = ("ip", "netns", "exec", NS, "sysctl", "-q", "-w")
    run(*ignore, "net.ipv4.icmp_echo_ignore_all=1")  # the guest's requests go unanswered
    os.write(console, f"ping -c 4 -i 0.3 -s 100 {HOST_IP} >/dev/null\n".encode())
    time.sleep(2.5)  # the guest's pings are sent: the namespace's 3 do not overlap them
    run(*ignore, "net.ipv4.icmp_echo_ignore_all=0")
    assert run("ip", "netns", "exec", NS, "ping", "-c", "3", "-i", "0.3", GUEST_IP, check=False)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    (vif,) = json.loads(out)["vifs"]
    assert vif["tap"].startswith("macvtap")
    icmp = next(t for t in vif["talkers"] if t["key"] == "icmp")
    assert (icmp["out"]["packets"], icmp["in"]["packets"]) == (7, 3)
    # out: the guest's 4 unanswered 100-byte requests and its 3 replies; in: 3 requests of 56
    assert icmp["out"]["payload_bytes"] == 4 * 100 + 3 * 56
    assert icmp["in"]["payload_bytes"] == 3 * 56
