"""One real busybox TCG guest on a bridge of its own, for measuring vifscope's tc-backend caps
against what the guest really sends and receives.

The e2e lab's guests log their console to a file (no input), so this guest gets a pty serial
with a root shell (image init.sh) and commands are typed into it. Traffic stays on
``PREFIX-qbr`` and a namespace ``PREFIX-qns`` (address NET.9.1; the guest is NET.9.11).
Rates are read from kernel counters after the shaper, over a window that skips TCP's start:
the guest's outbound on the bridge's veth end towards the namespace (tx), its inbound on the
tap (tx). Bytes include Ethernet headers, as htb counts them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import termios
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from vifscope.lab.guestxml import guest_domain_xml
from vifscope.lab.image import build_guest_image
from vifscope.lab.lab import GUEST_CACHE, guest_targets

URI = "qemu:///system"
SINK = "import socket,sys\ns=socket.socket();s.setsockopt(1,2,1);s.bind((sys.argv[1],int(sys.argv[2])));s.listen(1)\n" \
    "c,_=s.accept()\nwhile c.recv(1<<16): pass\n"  # fmt: skip
SOURCE = "import socket,sys,time\nc=socket.create_connection((sys.argv[1],int(sys.argv[2])))\n" \
    "end=time.time()+float(sys.argv[3]);b=bytes(1<<16)\nwhile time.time()<end: c.sendall(b)\n"  # fmt: skip


def _run(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=check).stdout


def _counter(dev: str, name: str) -> int:
    return int(Path(f"/sys/class/net/{dev}/statistics/{name}").read_text())


@dataclass
class QosGuest:
    prefix: str = "vs-q3-"
    net: str = "10.93"
    _fd: int = field(default=-1, repr=False)

    def __post_init__(self) -> None:
        p = self.prefix
        self.domain, self.bridge, self.netns = f"{p}qg1", f"{p}qbr", f"{p}qns"
        self.veth, self.veth_ns = f"{p}qv0", f"{p}qv1"
        self.host_ip, self.guest_ip = f"{self.net}.9.1", f"{self.net}.9.11"
        self.mac = f"52:54:00:{int(self.net.split('.')[1]) & 0xFF:02x}:09:01"  # as LabSpec.mac, guest 9

    @property
    def tap(self) -> str:
        tgt = guest_targets(self.domain)[0]
        assert tgt, f"{self.domain} has no tap"
        return tgt

    def __enter__(self) -> QosGuest:
        try:
            self._plumb()
            self._boot()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _plumb(self) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "netns", "add", self.netns)
        _run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", self.veth_ns)
        _run("ip", "link", "set", self.veth_ns, "netns", self.netns)
        _run("ip", "link", "set", self.veth, "master", self.bridge, "up")
        _run("ip", "link", "set", self.bridge, "up")
        ns = ("ip", "netns", "exec", self.netns, "ip")
        _run(*ns, "addr", "add", f"{self.host_ip}/24", "dev", self.veth_ns)
        _run(*ns, "link", "set", self.veth_ns, "up")
        _run(*ns, "link", "set", "lo", "up")

    def _boot(self) -> None:
        image = build_guest_image(GUEST_CACHE)
        nic = (
            f"<interface type='bridge'><mac address='{self.mac}'/><source bridge='{self.bridge}'/>"
            "<model type='virtio'/></interface>"
        )
        xml = guest_domain_xml(self.domain, image, [nic], cmdline_extra=f"vs.ip0={self.guest_ip}/24")
        path = Path(f"/tmp/{self.domain}.xml")
        path.write_text(xml)
        try:
            _run("virsh", "-c", URI, "define", str(path))
        finally:
            path.unlink(missing_ok=True)  # libvirt keeps the definition
        _run("virsh", "-c", URI, "start", self.domain)
        pts = _run("virsh", "-c", URI, "ttyconsole", self.domain).strip()
        self._fd = os.open(pts, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self._fd)  # no echo back into the guest, no line editing on the host side
        termios.tcflush(self._fd, termios.TCIOFLUSH)
        # Typed until the shell answers: input sent before it starts is lost.
        self.wait_for("VS-PING-OK", 300, poke=f"ping -c1 -W1 {self.host_ip} >/dev/null && echo VS-PING-OK\n")

    def wait_for(self, mark: str, seconds: float, poke: str) -> None:
        """Read the console until ``mark``, typing ``poke`` every 5 s."""
        seen, end, last = "", time.monotonic() + seconds, 0.0
        while time.monotonic() < end:
            if poke and time.monotonic() - last > 5:
                os.write(self._fd, poke.encode())
                last = time.monotonic()
            try:
                seen = (seen + os.read(self._fd, 4096).decode(errors="replace"))[-20000:]
            except BlockingIOError:
                time.sleep(0.2)
            if mark in seen:
                return
        raise TimeoutError(f"{self.domain}: no {mark!r} on the console in {seconds:.0f} s: {seen[-400:]!r}")

    def type(self, line: str) -> None:
        os.write(self._fd, (line + "\n").encode())

    def outbound(self, seconds: float, warmup: float = 3.0, port: int = 5001) -> float:
        """bit/s the guest sends (busybox nc piping zeroes) as counted past the shaper."""
        sink = subprocess.Popen(["ip", "netns", "exec", self.netns, "python3", "-c", SINK, self.host_ip, str(port)])
        try:
            time.sleep(0.5)
            total = int((seconds + warmup + 5) * 100)  # 64 KiB blocks: more than the link carries
            self.type(f"dd if=/dev/zero bs=65536 count={total} 2>/dev/null | nc {self.host_ip} {port} &")
            return self._window(self.veth, "tx_bytes", seconds, warmup)
        finally:
            self.type("killall nc dd 2>/dev/null")
            sink.kill()
            sink.wait()

    def inbound(self, seconds: float, warmup: float = 3.0, port: int = 5002) -> float:
        """bit/s the guest receives (busybox nc listening) as counted past the tap's htb."""
        self.type(f"nc -l -p {port} >/dev/null &")
        time.sleep(2)
        source = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "python3", "-c", SOURCE, self.guest_ip, str(port),
             str(seconds + warmup + 2)],
        )  # fmt: skip
        try:
            return self._window(self.tap, "tx_bytes", seconds, warmup)
        finally:
            source.kill()
            source.wait()
            self.type("killall nc 2>/dev/null")

    @staticmethod
    def _window(dev: str, counter: str, seconds: float, warmup: float) -> float:
        time.sleep(warmup)
        start, t0 = _counter(dev, counter), time.monotonic()
        time.sleep(seconds)
        return (_counter(dev, counter) - start) * 8 / (time.monotonic() - t0)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        _run("virsh", "-c", URI, "destroy", self.domain, check=False)
        _run("virsh", "-c", URI, "undefine", self.domain, check=False)
        _run("ip", "link", "del", self.veth, check=False)
        _run("ip", "link", "del", self.bridge, check=False)
        _run("ip", "netns", "del", self.netns, check=False)


def vifscope(*args: str) -> subprocess.CompletedProcess[str]:
    """This tree's vifscope against the system libvirtd, as a user runs it."""
    cmd = [sys.executable, "-m", "vifscope", "-c", URI, *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
