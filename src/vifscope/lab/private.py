"""Private libvirtd and ovsdb-server instances that tests and benchmarks may kill, hang and restart.

The host's own daemons are shared (guests, other users): they are never signalled. A private
libvirtd runs with its own config (sockets in a temporary directory, no TCP) in its own mount
namespace, where tmpfs hides the host's /run/libvirt, /var/lib/libvirt, /etc/libvirt and
/var/cache/libvirt -- without that, its QEMU driver would find the host's running guests' status
files and attach to their monitors -- and in its own network namespace (its network and nwfilter
drivers touch no host firewall). It serves libvirt's test driver: ``uri(node_file)`` opens
``test:///NODE`` inside that daemon, over its socket, a fresh copy per connection, so a restarted
daemon serves the same domains again. A private ovsdb-server has its own database and socket;
``OVS_RUNDIR`` (which ``ovs-vsctl`` and vifscope's OVSDB monitor both honour) points vifscope at it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

HIDDEN = ("/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/etc/libvirt", "/var/log/libvirt")
OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
CONF = """\
unix_sock_dir = "{sock}"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:{dir}/libvirtd.log"
"""


class PrivateDaemonError(RuntimeError):
    """A private daemon did not come up."""


def wait_until(predicate: Callable[[], bool], seconds: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class _Private:
    """A daemon process this object started: signalled by its pid, never by name."""

    def __init__(self, prefix: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.dir = Path(self._tmp.name)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise PrivateDaemonError("not running")
        return self.proc.pid

    def _spawn(self, argv: list[str]) -> None:
        log = (self.dir / "stderr.log").open("ab")
        with log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.starts += 1

    def signal(self, sig: signal.Signals) -> None:
        """SIGSTOP / SIGCONT / SIGKILL the daemon (a SIGKILL also reaps it)."""
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            self.proc.wait(timeout=30)
            self.proc = None

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def stop(self) -> None:
        """A clean stop (SIGTERM, SIGKILL if it does not leave): for cleanup."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> _Private:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class PrivateLibvirtd(_Private):
    """``libvirtd`` with its own sockets, config, state and network namespace."""

    def __init__(self) -> None:
        super().__init__("vifscope-libvirtd-")
        self.sock_dir = self.dir / "sock"
        self.sock_dir.mkdir()
        self.socket = self.sock_dir / "libvirt-sock"
        self.conf = self.dir / "libvirtd.conf"
        self.conf.write_text(CONF.format(sock=self.sock_dir, dir=self.dir))

    def uri(self, node_file: Path) -> str:
        return f"test+unix://{node_file}?socket={self.socket}"

    def argv(self) -> list[str]:
        mounts = "; ".join(f"mount -t tmpfs vifscope-private {d}" for d in HIDDEN)
        script = f"set -e; {mounts}; exec /usr/sbin/libvirtd --config {self.conf} --pid-file {self.dir}/libvirtd.pid"
        return ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script]

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until it answers (``virsh`` over its socket)."""
        self._spawn(self.argv())
        # unshare and sh exec into libvirtd: the Popen's pid is the daemon's.
        probe = ["virsh", "-q", "-c", f"test+unix:///default?socket={self.socket}", "uri"]
        ok = wait_until(lambda: subprocess.run(probe, capture_output=True, check=False).returncode == 0, timeout)
        if not ok:
            raise PrivateDaemonError(f"private libvirtd did not answer in {timeout:.0f} s (log in {self.dir})")


class PrivateOvsdb(_Private):
    """``ovsdb-server`` with its own database; ``rundir`` is what OVS_RUNDIR must be."""

    def __init__(self) -> None:
        super().__init__("vifscope-ovsdb-")
        self.rundir = self.dir
        self.db, self.socket = self.dir / "conf.db", self.dir / "db.sock"
        subprocess.run(["ovsdb-tool", "create", str(self.db), str(OVS_SCHEMA)], check=True, capture_output=True)

    @property
    def env(self) -> dict[str, str]:
        return {"OVS_RUNDIR": str(self.rundir)}

    def vsctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = ["ovs-vsctl", f"--db=unix:{self.socket}", "--no-wait", "--timeout=5", *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    def start(self, timeout: float = 30.0) -> None:
        self._spawn([
            "ovsdb-server", str(self.db), f"--remote=punix:{self.socket}", f"--unixctl={self.dir}/ovsdb.ctl",
            "--no-chdir", f"--log-file={self.dir}/ovsdb-server.log",
        ])  # fmt: skip
        if not wait_until(lambda: self.vsctl("init").returncode == 0, timeout):
            raise PrivateDaemonError(f"private ovsdb-server did not answer in {timeout:.0f} s (log in {self.dir})")


def ovs_env(db: PrivateOvsdb | None) -> dict[str, str]:
    """The environment that points a vifscope process at ``db`` (the host's OVSDB without one)."""
    return {**os.environ, **(db.env if db else {})}
