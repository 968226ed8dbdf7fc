"""vhost-user sockets as the kernel shows them: ``lstat`` of the path, ``/proc/net/unix`` (who
listens, how many connections) and ``/proc/PID/fd`` (which process holds the listener).

``/proc/net/unix`` lists the sockets of the reader's network namespace with their bound path:
``Num RefCount Protocol Flags Type St Inode Path``; Flags 0x10000 is __SO_ACCEPTCON (a
listening socket), St 3 is SS_CONNECTED. A server's accepted connections carry the listener's
path, so "connected sockets with the path" counts the peers that came; a connection the listener
has not accepted yet shows as St 2 (SS_CONNECTING), inode 0.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vifscope.model import SocketHolder, UnixSocketFact

SO_ACCEPTCON = 0x10000
SS_CONNECTING, SS_CONNECTED = 2, 3


@dataclass(frozen=True)
class UnixEntry:
    """One line of /proc/net/unix."""

    inode: int
    listening: bool
    connected: bool
    path: str
    pending: bool = False  # connected to the listener, not accepted yet


def parse_proc_net_unix(text: str) -> tuple[UnixEntry, ...]:
    """Every line with a path; lines of another shape are skipped (the header, unbound sockets)."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split(None, 7)
        if len(fields) < 8:
            continue  # unbound socket: no path column
        try:
            flags, state, inode = int(fields[3], 16), int(fields[5], 16), int(fields[6])
        except ValueError:
            continue
        listening = bool(flags & SO_ACCEPTCON)
        out.append(UnixEntry(inode, listening, state == SS_CONNECTED, fields[7], state == SS_CONNECTING))
    return tuple(out)


def socket_holders(inodes: Iterable[int], proc: Path = Path("/proc")) -> dict[int, tuple[SocketHolder, ...]]:
    """Which processes hold each socket inode open (one pass over every /proc/PID/fd).

    readlink relative to an open fd directory (``dir_fd``): ~15x faster than building a Path
    per fd (2.7 ms against 45 ms for 5,600 fds on the lab host)."""
    wanted = {f"socket:[{i}]": i for i in inodes}
    found: dict[int, list[SocketHolder]] = {}
    if not wanted:
        return {}
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        hits = _fd_hits(proc / name / "fd", wanted)
        if hits:
            holder = SocketHolder(int(name), _comm(proc / name))
            for inode in hits:
                found.setdefault(inode, []).append(holder)
    return {k: tuple(v) for k, v in found.items()}


def _fd_hits(fd_path: Path, wanted: dict[str, int]) -> set[int]:
    hits: set[int] = set()
    try:
        dir_fd = os.open(fd_path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return hits  # the process exited, or is not ours to look at
    try:
        for fd in os.listdir(dir_fd):
            try:
                target = os.readlink(fd, dir_fd=dir_fd)
            except OSError:
                continue  # closed while we looked
            if target in wanted:
                hits.add(wanted[target])
    except OSError:
        pass  # the process exited while we listed its fds: it holds nothing any more
    finally:
        os.close(dir_fd)
    return hits


def _comm(pid_dir: Path) -> str | None:
    try:
        return (pid_dir / "comm").read_text().strip() or None
    except OSError:
        return None


def _stat(path: Path) -> tuple[bool, bool, str | None]:
    """(exists, is a socket, error other than 'no such file')."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False, False, None
    except OSError as exc:
        return False, False, exc.strerror or str(exc)
    return True, stat.S_ISSOCK(st.st_mode), None


def read_unix_sockets(
    paths: Iterable[str], proc: Path = Path("/proc"), root: Path = Path("/")
) -> tuple[UnixSocketFact, ...]:
    """What the host shows at each path (``root``: where the file system starts; tests use a
    directory). Raises OSError when /proc/net/unix cannot be read."""
    wanted = sorted(set(paths))
    by_path: dict[str, list[UnixEntry]] = {p: [] for p in wanted}
    for e in parse_proc_net_unix((proc / "net" / "unix").read_text()):
        if e.path in by_path:
            by_path[e.path].append(e)
    holders = socket_holders((e.inode for es in by_path.values() for e in es if e.listening), proc)
    out = []
    for path in wanted:
        exists, is_socket, error = _stat(root / path.lstrip("/"))
        mine = by_path[path]
        held = tuple(h for e in mine if e.listening for h in holders.get(e.inode, ()))
        out.append(
            UnixSocketFact(
                path=path,
                exists=exists,
                is_socket=is_socket,
                listening=any(e.listening for e in mine),
                connections=sum(e.connected for e in mine),
                pending=sum(e.pending for e in mine),
                holders=tuple(dict.fromkeys(held)),
                error=error,
            )
        )
    return tuple(out)
