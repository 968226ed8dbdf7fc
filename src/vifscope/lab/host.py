"""Host plumbing for the lab: run commands, and start libvirtd / virtlogd / OVS when needed.

Works with and without systemd (these lab machines have none: daemons are started with
``-d``). Every command run is logged through the caller's ``log`` function.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

Log = Callable[[str], None]

LIBVIRT_SOCK = Path("/run/libvirt/libvirt-sock")
OVS_CTL = Path("/usr/share/openvswitch/scripts/ovs-ctl")


class LabError(RuntimeError):
    """A lab step failed; the message names the command and its error."""


def run(cmd: Sequence[str], log: Log | None = None, *, check: bool = True, timeout: float = 60) -> str:
    """Run a command, return stdout. On failure raise LabError (unless check=False)."""
    if log:
        log("$ " + shlex.join(cmd))
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        if check:
            raise LabError(f"{cmd[0]}: {exc}") from exc
        return ""
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"'{shlex.join(cmd)}' failed: {msg[-1] if msg else proc.returncode}")
    return proc.stdout


def has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir()


def _wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _pid_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    # A killed daemon can linger as a zombie; kill -0 still succeeds on those.
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def libvirtd_running() -> bool:
    return LIBVIRT_SOCK.exists() and _pid_alive(Path("/run/libvirtd.pid"))


def _prepare_kvm() -> None:
    """What udev would do: /dev/kvm group kvm, mode 0660 (saves ~4 s per domain start)."""
    kvm = Path("/dev/kvm")
    if kvm.exists() and shutil.which("chown"):
        subprocess.run(["chown", "root:kvm", str(kvm)], check=False, capture_output=True)
        kvm.chmod(0o660)


def ensure_libvirtd(log: Log | None = None) -> None:
    """Start virtlogd + libvirtd unless running; wait for the socket."""
    if has_systemd():
        if not LIBVIRT_SOCK.exists():
            run(["systemctl", "start", "libvirtd"], log)
        return
    _prepare_kvm()
    if not _pid_alive(Path("/run/virtlogd.pid")):
        run(["/usr/sbin/virtlogd", "-d"], log)
    if not libvirtd_running():
        run(["/usr/sbin/libvirtd", "-d"], log)
    if not _wait_for(lambda: LIBVIRT_SOCK.exists(), 15):
        raise LabError("libvirtd started but /run/libvirt/libvirt-sock did not appear")


def ovs_running() -> bool:
    if shutil.which("ovs-vsctl") is None:
        return False
    return subprocess.run(["ovs-vsctl", "--timeout=2", "show"], capture_output=True, check=False).returncode == 0


def ensure_ovs(log: Log | None = None) -> None:
    """Start ovsdb-server + ovs-vswitchd unless OVSDB answers."""
    if ovs_running():
        return
    if has_systemd():
        run(["systemctl", "start", "openvswitch-switch"], log)
    elif OVS_CTL.exists():
        run([str(OVS_CTL), "start", "--system-id=random"], log)
    else:
        raise LabError("Open vSwitch is not installed (apt-get install openvswitch-switch)")
    if not _wait_for(ovs_running, 15):
        raise LabError("Open vSwitch started but ovs-vsctl gets no answer")
