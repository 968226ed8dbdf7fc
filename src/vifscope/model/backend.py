"""Facts about the vif backends that are not kernel links: vhost-user UNIX sockets and SR-IOV
virtual functions handed to a guest (``hostdev``). Pure data.

``HostSnapshot.backends`` is None when nothing was read (no such vif, or the host is remote);
inside it a part that could not be read is None too (its SourceError is in the snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class SocketHolder:
    """A process holding a socket open (found through ``/proc/PID/fd`` -> ``socket:[INODE]``)."""

    pid: int
    comm: str | None = None


@dataclass(frozen=True)
class UnixSocketFact:
    """What the host shows at one vhost-user socket path.

    ``exists``/``is_socket`` come from ``lstat``; ``listening`` and ``connections`` from
    ``/proc/net/unix`` (a LISTEN socket bound to the path, and how many connected sockets carry
    the path: a server's accepted connections inherit its address). ``holders`` are the
    processes holding the listening socket.
    """

    path: str
    exists: bool
    is_socket: bool = False
    listening: bool = False
    connections: int = 0
    pending: int = 0  # connections the listener has not accepted (it hangs, or is busy)
    holders: tuple[SocketHolder, ...] = ()
    error: str | None = None  # lstat failed for another reason than "no such file"


@dataclass(frozen=True)
class QemuProcess:
    """A running domain's QEMU pid (libvirt's pid file; local qemu:///system only)."""

    domain: str
    pid: int


@dataclass(frozen=True)
class PciFunction:
    """A PCI address an interface names, as sysfs shows it (``/sys/bus/pci/devices/ADDR``).

    ``pf_address`` is the ``physfn`` link's target (only VFs have one), ``pf_netdevs`` the
    PF's ``net/`` entries, ``vf_index`` N of the PF's ``virtfnN`` link pointing at this VF.
    """

    address: str  # DDDD:BB:SS.F, lower case
    exists: bool
    pf_address: str | None = None
    pf_netdevs: tuple[str, ...] = ()
    vf_index: int | None = None
    driver: str | None = None  # the bound driver (vfio-pci while a guest owns it)


@dataclass(frozen=True)
class VfConfig:
    """One entry of a PF's VF table (``ip -d -j link show PF``: ``vfinfo_list``).

    ``vlan`` 0 means none (the kernel reports 0 for an untagged VF).
    """

    pf: str
    index: int
    mac: str | None
    vlan: int = 0
    qos: int = 0
    spoofchk: bool | None = None
    trust: bool | None = None
    link_state: str | None = None


@dataclass(frozen=True)
class BackendFacts:
    """Sockets, PCI functions and VF tables read for the snapshot's vhostuser/hostdev vifs."""

    sockets: tuple[UnixSocketFact, ...] | None = None
    qemu: tuple[QemuProcess, ...] = ()
    pci: tuple[PciFunction, ...] | None = None
    vfs: tuple[VfConfig, ...] | None = None  # every VF of every PF that was read
    pfs_read: tuple[str, ...] = ()  # the PF netdevs whose VF table is in ``vfs``

    @cached_property
    def socket_by_path(self) -> dict[str, UnixSocketFact]:
        return {s.path: s for s in self.sockets or ()}

    @cached_property
    def qemu_pid(self) -> dict[str, int]:
        return {q.domain: q.pid for q in self.qemu}

    @cached_property
    def pci_by_address(self) -> dict[str, PciFunction]:
        return {p.address: p for p in self.pci or ()}

    @cached_property
    def vf_by_pf_index(self) -> dict[tuple[str, int], VfConfig]:
        return {(v.pf, v.index): v for v in self.vfs or ()}
