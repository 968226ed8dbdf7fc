"""Read the backend facts of the vifs that have no kernel link: the UNIX sockets of running
vhostuser vifs (and their domains' QEMU pids) and, for hostdev vifs and hostdev networks, the
VFs' sysfs links and their PFs' VF tables.

Runs after libvirt's read (it needs the declared vifs) and only when such vifs exist, so a host
without them pays nothing. Only on this machine: for a URI naming another host the sockets and
PCI devices are that host's, so nothing is read and those vifs stay ``unverified``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from vifscope.model import BackendFacts, DeclaredVif, LibvirtNetwork, QemuProcess, SourceError, VfConfig
from vifscope.sources.cmd import CommandError
from vifscope.sources.jsonshape import JsonShapeError
from vifscope.sources.kernel.sriov import SYS, read_pci_functions, read_vf_table
from vifscope.sources.kernel.unixsock import read_unix_sockets
from vifscope.sources.libvirt.runtime import QEMU_RUN, process_name, read_pid

SOURCE = "backends"  # bind/join.py's BACKEND_SOURCE
HINT = "vifscope reads /proc/net/unix, /sys/bus/pci and 'ip -d -j link show PF' as root on the KVM host"


def is_local(uri: str) -> bool:
    """A URI without a host name: the domains' sockets and devices are on this machine."""
    return not urlsplit(uri).hostname


@dataclass(frozen=True)
class Wanted:
    """What the declared side asks to look at."""

    sockets: tuple[str, ...]
    socket_domains: tuple[str, ...]
    pci: tuple[str, ...]
    pfs: tuple[str, ...]  # PF netdevs named by hostdev networks (<forward><pf dev=>)

    @property
    def empty(self) -> bool:
        return not (self.sockets or self.pci or self.pfs)


def wanted(vifs: Iterable[DeclaredVif], networks: Iterable[LibvirtNetwork]) -> Wanted:
    running = [v for v in vifs if v.domain_state.has_taps]
    user = [v for v in running if v.type == "vhostuser" and v.source]
    nets = {n.name: n for n in networks if n.kind == "hostdev"}
    used = [
        nets[n] for n in dict.fromkeys(v.network or v.source or "" for v in running if v.type == "network") if n in nets
    ]
    pci = [v.source for v in running if v.type == "hostdev" and v.source]
    return Wanted(
        sockets=tuple(sorted({v.source or "" for v in user})),
        socket_domains=tuple(sorted({v.domain for v in user})),
        pci=tuple(sorted({*pci, *(a for n in used for a in n.forward_pci)})),
        pfs=tuple(sorted({d for n in used for d in n.forward_devs})),
    )


def _qemu_pids(domains: Iterable[str], run_dir: Path | None, proc: Path) -> tuple[QemuProcess, ...]:
    if run_dir is None:
        return ()
    out = []
    for name in domains:
        pid = read_pid(run_dir / f"{name}.pid")
        if pid is not None and process_name(pid, proc) is not None:
            out.append(QemuProcess(name, pid))
    return tuple(out)


VfReader = Callable[[str], tuple[VfConfig, ...]]


def _vf_tables(
    pfs: Iterable[str], reader: VfReader, errors: list[SourceError]
) -> tuple[tuple[VfConfig, ...], tuple[str, ...]]:
    vfs: list[VfConfig] = []
    read: list[str] = []
    for pf in sorted(set(pfs)):
        try:
            vfs += reader(pf)
        except (CommandError, JsonShapeError) as exc:
            errors.append(SourceError(SOURCE, f"VF table of {pf}: {exc}", HINT))
            continue
        read.append(pf)
    return tuple(vfs), tuple(read)


def read_backends(
    vifs: Iterable[DeclaredVif], networks: Iterable[LibvirtNetwork], uri: str, *, root: Path = Path("/"),
    sys: Path = SYS, proc: Path = Path("/proc"), run_dir: Path | None = QEMU_RUN, vf_reader: VfReader = read_vf_table,
) -> tuple[BackendFacts | None, tuple[SourceError, ...]]:  # fmt: skip
    """The facts, or None when there is nothing to read here; failures as SourceErrors.
    ``root``/``sys``/``proc``/``run_dir``/``vf_reader`` point elsewhere only in tests (golden cases
    replay a recorded file system, /proc and VF tables through these same readers)."""
    want = wanted(vifs, networks)
    if want.empty or not is_local(uri):
        return None, ()
    errors: list[SourceError] = []
    sockets = None
    if want.sockets:
        try:
            sockets = read_unix_sockets(want.sockets, proc, root)
        except OSError as exc:
            errors.append(SourceError(SOURCE, f"/proc/net/unix: {exc.strerror or exc}", HINT))
    qemu_run = run_dir if urlsplit(uri).scheme.startswith("qemu") else None  # only QEMU writes pid files there
    pci = read_pci_functions(want.pci, sys) if want.pci or want.pfs else None
    pfs = {*want.pfs, *(d for fn in pci or () for d in fn.pf_netdevs[:1])}
    vfs, read = _vf_tables(pfs, vf_reader, errors)
    facts = BackendFacts(
        sockets=sockets, qemu=_qemu_pids(want.socket_domains, qemu_run, proc), pci=pci,
        vfs=vfs if pci is not None else None, pfs_read=read,
    )  # fmt: skip
    return facts, tuple(errors)
