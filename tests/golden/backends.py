"""Replay a case's ``backends/`` directory through the real backend readers (sources/backends.py).

The recorded host is rebuilt in a temporary directory: socket files are real UNIX sockets
(bound, then closed: a stale socket file, exactly what lstat sees), /proc/net/unix is the
recorded text, /proc/PID/fd/N are symlinks to ``socket:[INODE]``, sysfs links are symlinks,
and each PF's VF table is its link object in the case's links.json (what ``ip -d -j link show
dev PF`` prints). No SR-IOV NIC exists on the machines these tests run on: the sysfs layout and
``vfinfo_list`` are written from their documentation (see README.md).
"""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vifscope.model import BackendFacts, DeclaredVif, LibvirtNetwork, SourceError, VfConfig
from vifscope.sources.backends import read_backends
from vifscope.sources.cmd import CommandError
from vifscope.sources.kernel.sriov import vf_tables_from_dump


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _files(root: Path, kinds: dict[str, str]) -> None:
    for path, kind in kinds.items():
        where = root / path.lstrip("/")
        where.parent.mkdir(parents=True, exist_ok=True)
        if kind == "socket":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.bind(str(where))
        elif kind == "file":
            where.write_text("not a socket\n")
        else:
            raise ValueError(f"files.json: unknown kind {kind!r} for {path}")


def _proc(proc: Path, src: Path) -> None:
    (proc / "net").mkdir(parents=True)
    unix = src / "proc_net_unix.txt"
    header = "Num       RefCount Protocol Flags    Type St Inode Path\n"
    (proc / "net" / "unix").write_text(unix.read_text(encoding="utf-8") if unix.exists() else header)
    for pid, info in _json(src / "processes.json").items():
        fd_dir = proc / pid / "fd"
        fd_dir.mkdir(parents=True)
        (proc / pid / "comm").write_text(info["comm"] + "\n")
        (proc / pid / "status").write_text(f"Name:\t{info['comm']}\nState:\tS (sleeping)\n")
        for fd, target in info["fds"].items():
            (fd_dir / fd).symlink_to(target)


def _sysfs(sys: Path, layout: dict[str, str | None]) -> None:
    for rel, target in layout.items():
        where = sys / rel
        if target is None:
            where.mkdir(parents=True, exist_ok=True)
        else:
            where.parent.mkdir(parents=True, exist_ok=True)
            where.symlink_to(target)


def _run_dir(run: Path, qemu: dict[str, int]) -> None:
    run.mkdir(parents=True)
    for domain, pid in qemu.items():
        (run / f"{domain}.pid").write_text(f"{pid}\n")


def vf_reader(links: Any) -> Any:
    """``ip -d -j link show dev PF`` answered from the recorded dump; a PF it lacks fails as
    ``ip`` does ("Device ... does not exist")."""

    def read(pf: str) -> tuple[VfConfig, ...]:
        tables = vf_tables_from_dump(links, [pf])
        if pf not in tables:
            raise CommandError(f"'ip -d -j link show dev {pf}' failed: Device \"{pf}\" does not exist.")
        return tables[pf]

    return read


def replay_backends(
    case: Path, vifs: Iterable[DeclaredVif], networks: Iterable[LibvirtNetwork], links: Any, uri: str
) -> tuple[BackendFacts | None, tuple[SourceError, ...]]:
    """The case's backend facts, read by ``read_backends`` from the rebuilt host; (None, ())
    for a case without ``backends/`` (the snapshot then has none, as before this existed)."""
    src = case / "backends"
    if not src.is_dir():
        return None, ()
    with tempfile.TemporaryDirectory(prefix="vs-v-") as tmp:
        root = Path(tmp)
        _files(root / "fs", _json(src / "files.json"))
        _proc(root / "proc", src)
        _sysfs(root / "sys", _json(src / "sysfs.json"))
        _run_dir(root / "run", _json(src / "qemu.json"))
        return read_backends(
            vifs, networks, uri, root=root / "fs", sys=root / "sys", proc=root / "proc", run_dir=root / "run",
            vf_reader=vf_reader(links),
        )  # fmt: skip
