"""Host prerequisites: the device nodes QEMU and libvirt open (/dev/net/tun, /dev/vhost-net,
/dev/kvm) and Open vSwitch (OVSDB answering, interfaces without errors)."""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.checks.base import Check, CheckContext, Explain, names, needs, virtio_vifs
from vifscope.checks.commands import ovs_vsctl
from vifscope.checks.fixes import attach_commands
from vifscope.model import Command, DeviceNode, Finding, Fix, Problem, Severity

# Kernel device numbers (Documentation/admin-guide/devices.txt, misc major 10).
DEVNUM: dict[str, tuple[int, int]] = {"tun": (10, 200), "vhost_net": (10, 238), "kvm": (10, 232)}
KVM_API_VERSION = 12
TUN_TYPES = frozenset({"bridge", "network", "ethernet"})  # vifs whose tap libvirt opens via /dev/net/tun


def node_problem(node: DeviceNode, devnum: tuple[int, int]) -> str | None:
    """Why a device node is unusable, or None."""
    if not node.exists:
        return f"{node.path} does not exist"
    if not node.is_char:
        return f"{node.path} is not a character device"
    if (node.major, node.minor) != devnum:
        return f"{node.path} is device {node.major}:{node.minor}, not {devnum[0]}:{devnum[1]}"
    if node.openable is False:
        return f"{node.path} cannot be opened: {node.error}"
    return None


def _node_evidence(node: DeviceNode) -> list[tuple[str, object]]:
    dev = f"{node.major}:{node.minor}" if node.major is not None else None
    return [
        ("path", node.path),
        ("exists", node.exists),
        ("device", dev),
        ("mode", oct(node.mode) if node.mode else None),
    ]


def tun_missing(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    devices = ctx.facts.devices
    why = node_problem(devices.tun, DEVNUM["tun"]) if devices else None
    if devices is None or why is None:
        return
    taps = [b for b in ctx.bindings if b.vif.type in TUN_TYPES]
    fix = Fix(
        (
            Command(("mkdir", "-p", "/dev/net")),
            Command(("mknod", "/dev/net/tun", "c", "10", "200")),
            Command(("chmod", "0666", "/dev/net/tun")),
        ),
        "kernel: CONFIG_TUN",
    )
    ev = [*_node_evidence(devices.tun), ("tap_vifs", len(taps))]
    yield c.on_host(
        "/dev/net/tun", f"{why}: libvirt cannot create taps, domains with {len(taps)} tap vif(s) fail to start", ev, fix
    )


def vhost_net_missing(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    devices = ctx.facts.devices
    why = node_problem(devices.vhost_net, DEVNUM["vhost_net"]) if devices else None
    if devices is None or why is None:
        return
    slowed = virtio_vifs(ctx)
    fix = Fix((Command(("modprobe", "vhost_net")),), "needs CONFIG_VHOST_NET; the node is /dev/vhost-net, 10:238")
    what = f"{len(slowed)} running virtio vif(s) run" if slowed else "virtio vifs started on this host will run"
    msg = f"{why}: {what} their datapath in QEMU userspace (slower, more CPU)"
    ev = [*_node_evidence(devices.vhost_net), ("virtio_vifs", len(slowed)), ("affected", names(slowed))]
    yield c.on_host("/dev/vhost-net", msg, ev, fix)


KVM_PERMS = (Command(("chown", "root:kvm", "/dev/kvm")), Command(("chmod", "0660", "/dev/kvm")))
KVM_PERMS_FIX = Fix(KVM_PERMS, "what udev does at boot")
KVM_MODULE_FIX = Fix(
    KVM_PERMS, "first modprobe kvm_intel or kvm_amd (enable VT-x/AMD-V in the firmware); then what udev does at boot"
)
KVM_TCG_FIX = Fix(note="use <domain type='qemu'> (TCG) for these guests, or a host with VT-x/AMD-V enabled")


def _kvm_problem(ctx: CheckContext) -> tuple[str, Severity, Fix] | None:
    """(why, severity, fix) when /dev/kvm cannot run hardware-assisted guests."""
    devices = ctx.facts.devices
    if devices is None:
        return None
    why = node_problem(devices.kvm, DEVNUM["kvm"])
    if why is None and devices.kvm_api_version != KVM_API_VERSION:
        why = f"/dev/kvm answers KVM_GET_API_VERSION with {devices.kvm_api_version}, not {KVM_API_VERSION}"
    if why is not None:
        kvm_domains = [d for d in ctx.facts.domain_runtime or () if d.virt_type == "kvm"]
        sev = Severity.ERROR if kvm_domains else Severity.WARNING
        return why, sev, KVM_MODULE_FIX
    mode = devices.kvm.mode or 0
    if not (mode & 0o006 == 0o006 or (devices.kvm.group == "kvm" and mode & 0o060 == 0o060)):
        why = f"/dev/kvm is mode {oct(mode)} group {devices.kvm.group}: QEMU (group kvm) cannot open it"
        return why, Severity.WARNING, KVM_PERMS_FIX
    if devices.cpu_virt_extensions is False:
        why = "the CPU shows no vmx/svm: /dev/kvm is a paravirtual KVM, hardware-assisted guests may hang"
        return why, Severity.WARNING, KVM_TCG_FIX
    return None


def kvm_unusable(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    found = _kvm_problem(ctx)
    devices = ctx.facts.devices
    if found is None or devices is None:
        return
    why, sev, fix = found
    kvm_domains = sorted(d.name for d in ctx.facts.domain_runtime or () if d.virt_type == "kvm")
    ev: list[tuple[str, object]] = [*_node_evidence(devices.kvm), ("group", devices.kvm.group)]
    ev += [("api_version", devices.kvm_api_version), ("cpu_vmx_svm", devices.cpu_virt_extensions)]
    ev.append(("kvm_domains", ", ".join(kvm_domains)))
    yield c.on_host("/dev/kvm", why, ev, fix, severity=sev)


def ovs_not_running(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    err = next((e for e in ctx.snap.errors if e.source == "ovs"), None)
    if err is None:
        return  # OVSDB answered, or OVS is not installed at all (not an error)
    needy = [b for b in ctx.running if b.expect.attach == "ovs-bridge"]
    sev = Severity.ERROR if needy else Severity.WARNING
    ev = [("error", err.error), ("ovs_vifs", names(needy))]
    fix = Fix(
        (Command(("/usr/share/openvswitch/scripts/ovs-ctl", "start")),),
        "with systemd: systemctl start openvswitch-switch",
    )
    yield c.on_host("openvswitch", f"OVSDB does not answer: {err.error}", ev, fix, severity=sev)


def ovs_port_error(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    by_target = {b.vif.target: b for b in ctx.running if b.vif.target}
    for port in ctx.snap.ovs_ports:
        if not port.error:
            continue
        b = by_target.get(port.name)
        ev = [("port", port.name), ("bridge", port.bridge), ("error", port.error), ("ofport", port.ofport)]
        if b is not None and Problem.OVS_ERROR in b.problems:
            # Take the port out and add it again (move: off its OVS bridge, onto the declared one).
            steps = attach_commands(b, ctx.snap)
            fix = Fix(steps) if steps else None
            yield c.on_vif(b, f"OVS cannot use {port.name}: {port.error}", ev, fix, subject=port.bridge)
        elif b is None:
            fix = Fix((ovs_vsctl("del-port", port.bridge, port.name),), "if the device is gone for good")
            msg = f"OVS port {port.name} on {port.bridge} is in error: {port.error}"
            yield c.on_host(port.name, msg, ev, fix, severity=Severity.WARNING)


_DEV = needs("devices", "device nodes")
CHECKS: tuple[Check, ...] = (
    Check(
        "host.tun_missing",
        "host",
        Severity.ERROR,
        "/dev/net/tun unusable",
        tun_missing,
        Explain(
            "/dev/net/tun is missing, not the tun character device (10:200), or cannot be opened.",
            "libvirt creates every tap through it: domains with bridge/network/ethernet vifs fail to start.",
            "mknod /dev/net/tun c 10 200 (containers: bind-mount it in); the kernel needs CONFIG_TUN.",
        ),
        (_DEV,),
    ),
    Check(
        "host.vhost_net_missing",
        "host",
        Severity.WARNING,
        "/dev/vhost-net missing",
        vhost_net_missing,
        Explain(
            "/dev/vhost-net is missing or unusable.",
            "virtio-net falls back to QEMU's userspace datapath: several times lower throughput and more host CPU.",
            "modprobe vhost_net. On kernels built without CONFIG_VHOST_NET (like this lab's) there is no fix but "
            "another kernel.",
        ),
        (_DEV,),
    ),
    Check(
        "host.kvm_unusable",
        "host",
        Severity.ERROR,
        "/dev/kvm unusable",
        kvm_unusable,
        Explain(
            "/dev/kvm is missing, not the KVM device, does not answer KVM_GET_API_VERSION=12, has permissions QEMU "
            "(group kvm) cannot use, or the CPU has no VT-x/AMD-V (a paravirtual KVM).",
            "type='kvm' domains fail to start (error) or fall back to / must use TCG, 10-50x slower (warning).",
            "chown root:kvm /dev/kvm; chmod 0660 /dev/kvm (what udev does); enable VT-x/AMD-V; else use "
            "<domain type='qemu'>.",
            "A paravirtual KVM (e.g. kvm_pvm) that works for your guests.",
        ),
        (_DEV,),
    ),
    Check(
        "ovs.not_running",
        "host",
        Severity.ERROR,
        "OVSDB down",
        ovs_not_running,
        Explain(
            "Open vSwitch is installed but ovsdb-server does not answer.",
            "OVS vifs cannot be checked or re-plugged; if ovs-vswitchd is down too they forward nothing.",
            "ovs-ctl start (no systemd) or systemctl start openvswitch-switch.",
        ),
    ),
    Check(
        "ovs.port_error",
        "binding",
        Severity.ERROR,
        "OVS interface error",
        ovs_port_error,
        Explain(
            "OVSDB's Interface.error is set: ovs-vswitchd could not open or add the device.",
            "The port exists in the database but forwards nothing.",
            "Fix the cause in the error text (device gone, busy, wrong type), then del-port and add-port again.",
            "Ports of devices deliberately removed: delete them (warning for non-vif ports).",
        ),
    ),
)
