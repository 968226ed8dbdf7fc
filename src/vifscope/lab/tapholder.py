"""Hold tap devices open the way QEMU does, so they have a real carrier.

``python -m vifscope.lab.tapholder NAMES_FILE`` creates one non-persistent tap per name
(open /dev/net/tun + TUNSETIFF IFF_TAP|IFF_NO_PI), prints ``ready N`` and blocks until
stdin closes or it gets SIGTERM; the taps vanish with the process. Run it inside a
namespace with ``ip netns exec``. Measured: 5,000 taps this way take seconds, while
5,000 veth pairs take ~11 minutes.
"""

from __future__ import annotations

import fcntl
import os
import resource
import signal
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def open_tap(name: str) -> int:
    """Create (or attach to) tap ``name``; the fd keeps it alive and its carrier up."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def raise_nofile(need: int) -> None:
    """One fd per tap: lift the soft limit (and the hard one, as root) to fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need + 64
    if soft >= want:
        return
    if hard != resource.RLIM_INFINITY and hard < want:
        hard = want  # only root may raise the hard limit; the holder runs as root
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m vifscope.lab.tapholder NAMES_FILE", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        names = [line.strip() for line in fh if line.strip()]
    raise_nofile(len(names))
    fds = [open_tap(name) for name in names]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"ready {len(fds)}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or kills us)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
