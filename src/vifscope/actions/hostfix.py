"""Host fixes: sysctls, keyed by the doctor check id that found the fault.

Pure. Only planned with ``host=True`` (``doctor --fix --fix-host``): these change the whole
host, not one vif. Each key goes into its own file under /etc/sysctl.d/ (so it survives a
reboot and two runs never overwrite each other's keys) and is applied with ``sysctl -w``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from vifscope.actions.model import (
    Action,
    ActionKind,
    RestoreFile,
    RestoreSysctl,
    SetSysctl,
    Skip,
    SysctlIs,
    WriteFile,
)
from vifscope.checks.commands import sysctl_file
from vifscope.checks.fixes import at_least, port_range
from vifscope.model import Finding


def _at_least(usual: int) -> Callable[[Finding], str]:
    """The value doctor's fix names: the usual one, or the check's "minimum" (evidence) when higher."""
    return lambda finding: str(at_least(usual, finding.evidence_dict().get("minimum")))


def _port_range(finding: Finding) -> str:
    return port_range(finding.evidence_dict().get("minimum"))


def _const(value: str) -> Callable[[Finding], str]:
    return lambda _finding: value


# check id -> (sysctl key, value from the finding) pairs that resolve it.
SYSCTL_FIXES: dict[str, tuple[tuple[str, Callable[[Finding], str]], ...]] = {
    # Routed / NAT libvirt networks forward guest traffic through the host.
    "host.ip_forward_off": (("net.ipv4.ip_forward", _const("1")),),
    # Bridged frames handed to iptables meet a FORWARD DROP policy (Docker sets one): bridged
    # guests lose traffic. libvirt's own advice is to not pass bridged traffic to iptables.
    "host.br_netfilter_drop": (
        ("net.bridge.bridge-nf-call-iptables", _const("0")),
        ("net.bridge.bridge-nf-call-ip6tables", _const("0")),
    ),
    "sysctl.somaxconn_low": (("net.core.somaxconn", _at_least(4096)),),
    "sysctl.port_range_narrow": (("net.ipv4.ip_local_port_range", _port_range),),
    "sysctl.conntrack_max_low": (("net.netfilter.nf_conntrack_max", _at_least(262144)),),
}
NEEDS_FIX_HOST = "a host-wide sysctl: planned only with --fix-host"


def sysctl_action(finding: Finding, key: str, value: str, sysctl_dir: str) -> Action:
    path = sysctl_file(key, sysctl_dir)
    content = f"# written by vifscope doctor --fix-host for {finding.check}\n{key} = {value}\n"
    return Action(
        kind=ActionKind.SYSCTL,
        target=key,
        description=f"set {key} = {value} now and at boot ({path})",
        steps=(WriteFile(path, content), SetSysctl(key, value)),
        undo=(RestoreSysctl(key), RestoreFile(path)),
        promises=(SysctlIs(key, value),),
        reason=finding.check,
    )


def host_items(findings: Sequence[Finding], *, host: bool, sysctl_dir: str) -> Iterable[Action | Skip]:
    """Sysctl actions for the findings the table knows (skips when ``host`` was not asked)."""
    for finding in findings:
        fixes = SYSCTL_FIXES.get(finding.check)
        if fixes is None:
            continue
        for key, value in fixes:
            if host:
                yield sysctl_action(finding, key, value(finding), sysctl_dir)
            else:
                yield Skip(finding.check, key, NEEDS_FIX_HOST, finding.domain, finding.mac)
