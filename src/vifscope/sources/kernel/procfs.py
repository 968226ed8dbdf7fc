"""Sysctls and device nodes of the host (or of the network namespace vifscope runs in).

Reads ``/proc/sys`` files and stats ``/dev`` nodes; opens /dev/kvm only to ask
KVM_GET_API_VERSION. Base paths are parameters so tests can point at a prepared tree.
"""

from __future__ import annotations

import fcntl
import grp
import os
import stat
from pathlib import Path

from vifscope.model import DeviceNode, DeviceNodes, Sysctls

KVM_GET_API_VERSION = 0xAE00  # _IO(KVMIO, 0x00)


def _read(base: Path, key: str) -> str | None:
    try:
        return (base / key).read_text().strip()
    except OSError:
        return None  # absent key: the feature (br_netfilter, conntrack) is not there


def _int(base: Path, key: str) -> int | None:
    text = _read(base, key)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _port_range(base: Path) -> tuple[int, int] | None:
    text = _read(base, "net/ipv4/ip_local_port_range")
    parts = text.split() if text else []
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def read_sysctls(base: Path = Path("/proc/sys")) -> Sysctls:
    """The sysctls the checks look at; per network namespace where the kernel makes them so."""
    return Sysctls(
        ip_forward=_int(base, "net/ipv4/ip_forward"),
        ipv6_forwarding=_int(base, "net/ipv6/conf/all/forwarding"),
        bridge_nf_call_iptables=_int(base, "net/bridge/bridge-nf-call-iptables"),
        bridge_nf_call_ip6tables=_int(base, "net/bridge/bridge-nf-call-ip6tables"),
        somaxconn=_int(base, "net/core/somaxconn"),
        ip_local_port_range=_port_range(base),
        nf_conntrack_max=_int(base, "net/netfilter/nf_conntrack_max"),
        nf_conntrack_count=_int(base, "net/netfilter/nf_conntrack_count"),
    )


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _open_probe(path: Path, ioctl: int | None) -> tuple[bool, int | None, str | None]:
    """(openable, ioctl answer, error). Opening tun/vhost-net/kvm without a setup ioctl is harmless."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return False, None, exc.strerror or str(exc)
    try:
        return True, fcntl.ioctl(fd, ioctl) if ioctl is not None else None, None
    except OSError as exc:
        return True, None, f"ioctl failed: {exc.strerror or exc}"
    finally:
        os.close(fd)


def read_device_node(path: Path, ioctl: int | None = None) -> tuple[DeviceNode, int | None]:
    """Stat (and open) one device node; the int is the ioctl's answer when one was asked."""
    try:
        st = path.stat()
    except OSError:
        return DeviceNode(str(path), exists=False), None
    is_char = stat.S_ISCHR(st.st_mode)
    openable, answer, error = _open_probe(path, ioctl) if is_char else (None, None, "not a character device")
    node = DeviceNode(
        path=str(path),
        exists=True,
        is_char=is_char,
        major=os.major(st.st_rdev) if is_char else None,
        minor=os.minor(st.st_rdev) if is_char else None,
        mode=stat.S_IMODE(st.st_mode),
        group=_group(st.st_gid),
        openable=openable,
        error=error,
    )
    return node, answer


def cpu_virt_extensions(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the CPU advertises Intel VT-x (vmx) or AMD-V (svm)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return bool(flags & {"vmx", "svm"})
    return None


def read_device_nodes(dev: Path = Path("/dev"), cpuinfo: Path = Path("/proc/cpuinfo")) -> DeviceNodes:
    tun, _ = read_device_node(dev / "net" / "tun")
    vhost, _ = read_device_node(dev / "vhost-net")
    kvm, api = read_device_node(dev / "kvm", KVM_GET_API_VERSION)
    return DeviceNodes(tun, vhost, kvm, kvm_api_version=api, cpu_virt_extensions=cpu_virt_extensions(cpuinfo))
