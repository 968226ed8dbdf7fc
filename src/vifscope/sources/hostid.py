"""Who this host is, for a remote hub: the machine id, the host's uptime, the libvirt library
version. Each reader answers None when it cannot tell (a container without /etc/machine-id,
a /proc that is not Linux's): the identity document then says "unknown" rather than failing.
"""

from __future__ import annotations

from pathlib import Path

MACHINE_ID = Path("/etc/machine-id")
UPTIME = Path("/proc/uptime")


def read_machine_id(path: Path = MACHINE_ID) -> str | None:
    """systemd's machine-id (also written by dbus and Debian's installer): stable across reboots
    and renames, unlike the host name a hub would otherwise key on."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def read_host_uptime(path: Path = UPTIME) -> float | None:
    """Seconds since the host booted (the first field of /proc/uptime)."""
    try:
        return float(path.read_text(encoding="ascii").split()[0])
    except (OSError, UnicodeDecodeError, ValueError, IndexError):
        return None


def libvirt_library_version() -> str | None:
    """The libvirt client library's version as 'major.minor.micro' (no connection needed; the
    daemon's and QEMU's versions would cost a connection per request)."""
    import libvirt

    try:
        number = libvirt.getVersion()
    except libvirt.libvirtError:
        return None
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"
