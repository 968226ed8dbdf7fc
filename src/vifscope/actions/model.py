"""What vifscope may change on a host, as data: steps, promises, actions, plans.

Pure. A Plan (nmstate's shape) lists Actions; each names its target, the exact steps that
change it, the steps that undo it, and its promises: what must be true on a fresh snapshot
afterwards. ``apply`` runs steps; ``verify`` checks promises; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vifscope.checks.commands import sysctl_set
from vifscope.model import Command, HostSnapshot

# --- steps: one change each, shown to the user exactly as they run ---------------------------
# A command step is a model.Command: the argv doctor's fix shows, run as is (never a shell).


@dataclass(frozen=True)
class WriteFile:
    """Write ``content`` to ``path``; apply remembers the old content so RestoreFile can put it back."""

    path: str
    content: str

    def text(self) -> str:
        return f"write {self.path}: {self.content.strip()}"


@dataclass(frozen=True)
class RestoreFile:
    """Undo of WriteFile: the content ``path`` had before apply (removed if it did not exist)."""

    path: str

    def text(self) -> str:
        return f"restore {self.path} as it was before apply (remove it if it did not exist)"


@dataclass(frozen=True)
class SetSysctl:
    """``sysctl -w key=value``; apply remembers the old value for RestoreSysctl."""

    key: str
    value: str

    @property
    def command(self) -> Command:
        return sysctl_set((self.key, self.value))

    def text(self) -> str:
        return self.command.text()


@dataclass(frozen=True)
class RestoreSysctl:
    """Undo of SetSysctl: the value the key had before apply."""

    key: str

    def text(self) -> str:
        return f"sysctl -w {self.key}=<value before apply>"


Step = Command | WriteFile | RestoreFile | SetSysctl | RestoreSysctl


# --- promises: what must hold afterwards, checked on a fresh snapshot -----------------------


@dataclass(frozen=True)
class Observed:
    """What verification looks at: a fresh snapshot plus host values the snapshot lacks (sysctls)."""

    snapshot: HostSnapshot
    sysctls: tuple[tuple[str, str | None], ...] = ()

    def sysctl(self, key: str) -> str | None:
        return dict(self.sysctls).get(key)


@dataclass(frozen=True)
class LinkMaster:
    """Kernel link ``link`` is a port of Linux bridge ``master`` (IFLA_MASTER), and not an OVS port."""

    link: str
    master: str

    def text(self) -> str:
        return f"{self.link} is a port of {self.master}"

    def broken(self, seen: Observed) -> str | None:
        link = seen.snapshot.links_by_name.get(self.link)
        if link is None:
            return f"{self.link} does not exist"
        port = seen.snapshot.ovs_by_name.get(self.link)
        if port is not None:
            return f"{self.link} is on OVS bridge {port.bridge}"
        return None if link.master == self.master else f"{self.link} master is {link.master or 'none'}"


@dataclass(frozen=True)
class LinkUp:
    """Kernel link ``link`` is administratively up (IFF_UP)."""

    link: str

    def text(self) -> str:
        return f"{self.link} is up"

    def broken(self, seen: Observed) -> str | None:
        link = seen.snapshot.links_by_name.get(self.link)
        if link is None:
            return f"{self.link} does not exist"
        return None if link.admin_up else f"{self.link} is admin down"


@dataclass(frozen=True)
class OvsPortOn:
    """OVSDB holds interface ``port`` on bridge ``bridge`` with these external_ids."""

    port: str
    bridge: str
    attached_mac: str | None = None
    iface_id: str | None = None

    def text(self) -> str:
        mac = f" with attached-mac {self.attached_mac}" if self.attached_mac else ""
        return f"{self.port} is on OVS {self.bridge}{mac}"

    def broken(self, seen: Observed) -> str | None:
        snap = seen.snapshot
        if not snap.ovs_available:
            return "OVSDB could not be read"
        port = snap.ovs_by_name.get(self.port)
        if port is None:
            return f"{self.port} is on no OVS bridge"
        if port.bridge != self.bridge:
            return f"{self.port} is on OVS {port.bridge}"
        if self.attached_mac and port.attached_mac != self.attached_mac.lower():
            return f"attached-mac is {port.attached_mac}"
        if self.iface_id and port.iface_id != self.iface_id:
            return f"iface-id is {port.iface_id}"
        return None


@dataclass(frozen=True)
class NetworkActive:
    """libvirt network ``network`` is active (``virsh net-info``: Active yes)."""

    network: str

    def text(self) -> str:
        return f"network {self.network} is active"

    def broken(self, seen: Observed) -> str | None:
        net = seen.snapshot.networks_by_name.get(self.network)
        if net is None:
            return f"network {self.network} not seen (libvirt read failed?)"
        return None if net.active else f"network {self.network} is inactive"


@dataclass(frozen=True)
class VifLinkState:
    """The live XML of ``domain``'s interface ``mac`` has ``<link state=…>`` = ``state``."""

    domain: str
    mac: str
    state: str

    def text(self) -> str:
        return f"{self.domain} {self.mac} link state {self.state}"

    def broken(self, seen: Observed) -> str | None:
        for vif in seen.snapshot.vifs:
            if vif.domain == self.domain and vif.mac == self.mac:
                return None if vif.link_state == self.state else f"link state is {vif.link_state}"
        return f"{self.domain} has no interface {self.mac}"


@dataclass(frozen=True)
class SysctlIs:
    """``/proc/sys`` key ``key`` reads ``value`` (whitespace-normalised)."""

    key: str
    value: str

    def text(self) -> str:
        return f"{self.key} = {self.value}"

    def broken(self, seen: Observed) -> str | None:
        now = seen.sysctl(self.key)
        if now is None:
            return f"{self.key} could not be read"
        return None if " ".join(now.split()) == " ".join(self.value.split()) else f"{self.key} is {now}"


Promise = LinkMaster | LinkUp | OvsPortOn | NetworkActive | VifLinkState | SysctlIs


# --- actions and plans ----------------------------------------------------------------------


class ActionKind(StrEnum):
    """What an action does; the member order is the order a plan applies them in."""

    NETWORK_START = "network-start"  # first: it creates the bridge later actions plug into
    BRIDGE_UP = "bridge-up"
    ATTACH = "attach"  # plug a tap into its declared Linux bridge / OVS bridge (moving it if misbound)
    OVS_EXTERNAL_IDS = "ovs-external-ids"
    TAP_UP = "tap-up"
    LINK_STATE_UP = "link-state-up"
    LINK_STATE_DOWN = "link-state-down"  # only on explicit request (the API's link endpoint)
    SYSCTL = "sysctl"

    @property
    def yields_to_others(self) -> bool:
        """Live link/OVS state another tool may legitimately take over between apply and
        verify: when its promise is broken, rollback leaves it alone instead of clobbering
        that tool's change. Sysctls (a file we wrote) and networks are always undone."""
        return self not in (ActionKind.SYSCTL, ActionKind.NETWORK_START)


@dataclass(frozen=True)
class Action:
    """One change: exact steps, the steps that undo it, and what must hold afterwards."""

    kind: ActionKind
    target: str  # the object changed: a tap, bridge, network, or sysctl key
    description: str
    steps: tuple[Step, ...]
    undo: tuple[Step, ...]
    promises: tuple[Promise, ...]
    reason: str  # the Problem code or check id that asked for it
    domain: str | None = None
    mac: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """Two vifs asking for the same change (one bridge up) share one action."""
        return (self.kind.value, self.target)

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(step.text() for step in self.steps)

    @property
    def undo_commands(self) -> tuple[str, ...]:
        return tuple(step.text() for step in self.undo)


@dataclass(frozen=True)
class Skip:
    """A fault the plan leaves alone, and why (shown so nothing is silently ignored)."""

    reason: str  # Problem code or check id
    target: str
    why: str
    domain: str | None = None
    mac: str | None = None


@dataclass(frozen=True)
class Plan:
    """Actions in apply order, plus the faults left alone."""

    uri: str
    actions: tuple[Action, ...] = ()
    skipped: tuple[Skip, ...] = ()

    @property
    def sysctl_keys(self) -> tuple[str, ...]:
        return tuple(p.key for a in self.actions for p in a.promises if isinstance(p, SysctlIs))
