"""The argv of every host command vifscope suggests (doctor) or runs (``--fix``, ``watch --heal``).

Pure. One place, so a finding's fix and the plan's step for it are the same argv. Every name
is one argv element, placed where the tool cannot read it as an option or keyword (checked
against iproute2 6.1, ovs-vsctl 3.1 and virsh 9.0 with names such as ``-x``, ``--live``,
``help``, ``up``, ``vt;id`` and ``br$(id)``):

- ``ip link set dev NAME``: after ``dev`` any word is the name. Without it "help", "h", "up"
  or "master" are keywords (``ip link set master master br0`` would enslave br0 to the link
  "master"); ``ip link set -- NAME`` is refused. ``ip link add name NAME`` likewise.
- ``bridge link set dev NAME``, ``tc qdisc del dev NAME``: the same ``dev`` keyword.
- ``ovs-vsctl``: the words after a command name are its arguments, "-x" and "--x" included
  (``--`` there would start the next command), so names need nothing; only a port literally
  named "--" cannot be given to ovs-vsctl at all.
- ``virsh``: options first, then ``--``, then the positional names: a domain or network named
  "--live" is otherwise read as an option.
- ``ethtool`` has no ``--``: a device whose name starts with "-" is shown by ``ip`` instead.
"""

from __future__ import annotations

from vifscope.model import Command

OVS_TIMEOUT = "--timeout=10"  # ovs-vsctl waits forever for ovs-vswitchd by default
SYSCTL_DIR = "/etc/sysctl.d"
# Writes $1 (one line) to the file $2: the values are arguments, never part of the script.
WRITE_LINE = 'printf "%s\\n" "$1" > "$2"'


def ip_link(dev: str, *args: str) -> Command:
    """``ip link set dev DEV ARGS``."""
    return Command(("ip", "link", "set", "dev", dev, *args))


def ip_link_add(name: str, *args: str) -> Command:
    """``ip link add name NAME ARGS``."""
    return Command(("ip", "link", "add", "name", name, *args))


def bridge_link(dev: str, *args: str) -> Command:
    return Command(("bridge", "link", "set", "dev", dev, *args))


def tc_qdisc_del(dev: str, parent: str) -> Command:
    return Command(("tc", "qdisc", "del", "dev", dev, parent))


def link_info(dev: str) -> Command:
    """Speed, duplex and link detection of a NIC (ethtool cannot name a device starting with "-")."""
    return Command(("ip", "-d", "link", "show", "dev", dev) if dev.startswith("-") else ("ethtool", dev))


def ovs_vsctl(*args: str) -> Command:
    return Command(("ovs-vsctl", OVS_TIMEOUT, *args))


def ovs_set_ids(tap: str, ids: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """``ovs-vsctl`` arguments setting external_ids on interface ``tap``."""
    return ("set", "Interface", tap, *(f"external_ids:{k}={v}" for k, v in ids))


def virsh(uri: str, command: str, *names: str, options: tuple[str, ...] = ()) -> Command:
    """``virsh -c URI COMMAND OPTIONS -- NAMES``: the libvirt doctor looked at, names after ``--``."""
    return Command(("virsh", "-c", uri, command, *options, "--", *names))


def sysctl_set(*pairs: tuple[str, str]) -> Command:
    return Command(("sysctl", "-w", *(f"{k}={v}" for k, v in pairs)))


def sysctl_file(key: str, sysctl_dir: str = SYSCTL_DIR) -> str:
    """One file per key, so two fixes never overwrite each other's keys."""
    return f"{sysctl_dir.rstrip('/')}/90-vifscope-{key}.conf"


def sysctl_persist(key: str, value: str, sysctl_dir: str = SYSCTL_DIR) -> Command:
    """Write ``key = value`` to the key's sysctl.d file (a redirection is not an argv: ``sh -c``
    with the line and the path as its arguments)."""
    return Command(("sh", "-c", WRITE_LINE, "sh", f"{key} = {value}", sysctl_file(key, sysctl_dir)))
