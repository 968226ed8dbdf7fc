"""Local runtime facts from libvirt's pid files and /proc: each running domain's QEMU process
(start time, open /dev/vhost-net fds) and each network's dnsmasq.

Only meaningful for a local qemu:///system host; on any other URI the pid files are not
there and every field stays None ("unknown"), which the checks treat as not evaluable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from vifscope.model import DomainRuntime, NetworkRuntime
from vifscope.sources.libvirt.conn import DomainInfo

QEMU_RUN = Path("/run/libvirt/qemu")
NETWORK_RUN = Path("/run/libvirt/network")


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_name(pid: int, proc: Path = Path("/proc")) -> str | None:
    """``comm`` of a live process; None when gone or a zombie."""
    try:
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    if "\nState:\tZ" in status:
        return None
    return (proc / str(pid) / "comm").read_text().strip() if (proc / str(pid) / "comm").exists() else None


def started_at(pid: int, proc: Path = Path("/proc")) -> datetime | None:
    """Process start: boot time (``btime``) + field 22 of /proc/PID/stat in clock ticks."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        btime = next(int(ln.split()[1]) for ln in (proc / "stat").read_text().splitlines() if ln.startswith("btime"))
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # comm may contain spaces: split after it
    try:
        ticks = int(fields[19])
    except (IndexError, ValueError):
        return None
    return datetime.fromtimestamp(btime + ticks / os.sysconf("SC_CLK_TCK"), UTC)


def vhost_fds(pid: int, proc: Path = Path("/proc")) -> int | None:
    """How many /dev/vhost-net fds the QEMU process holds (one per queue of a vhost vif)."""
    try:
        fds = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return None
    count = 0
    for fd in fds:
        try:
            count += os.readlink(fd) == "/dev/vhost-net"
        except OSError:
            continue  # fd closed while we looked
    return count


def domain_runtime(domains: Iterable[DomainInfo], run_dir: Path | None = QEMU_RUN) -> tuple[DomainRuntime, ...]:
    """``run_dir=None``: not a local host, the QEMU processes are not ours to look at."""
    out = []
    for d in domains:
        pid = read_pid(run_dir / f"{d.name}.pid") if d.active and run_dir else None
        alive = pid is not None and process_name(pid) is not None
        out.append(
            DomainRuntime(
                name=d.name,
                uuid=d.uuid,
                virt_type=d.virt_type,
                pid=pid if alive else None,
                started_at=started_at(pid) if alive and pid else None,
                vhost_fds=vhost_fds(pid) if alive and pid else None,
            )
        )
    return tuple(out)


def network_runtime(
    names: Iterable[str], active: Iterable[str], isolated: dict[str, bool], run_dir: Path | None = NETWORK_RUN
) -> tuple[NetworkRuntime, ...]:
    """dnsmasq of each active network from ``/run/libvirt/network/NAME.pid`` (None: not local)."""
    live = set(active)
    out = []
    for name in names:
        known = run_dir is not None and run_dir.is_dir() and name in live
        pid = read_pid(run_dir / f"{name}.pid") if known and run_dir else None
        running = (pid is not None and process_name(pid) == "dnsmasq") if known else None
        out.append(NetworkRuntime(name, pid, running, isolated.get(name, False)))
    return tuple(out)
