"""Live flow maps of running collectors, seen from another process (doctor's flows.map_full).

The collectors never pin their map: it lives while ``flows`` / ``watch --flows`` / ``exporter
--flows`` runs. Another process finds it by id (BPF_MAP_GET_NEXT_ID → GET_FD_BY_ID → OBJ_GET_INFO:
name ``flows``, an LRU hash with flows.bpf.c's key and value sizes), counts its entries with
batch lookups, and finds the process holding it from /proc/*/fdinfo (``map_id:``).
Needs CAP_SYS_ADMIN (map ids are global): without it, None (not readable).
"""

from __future__ import annotations

import ctypes
import errno
import math
import os
import struct
from pathlib import Path

from vifscope.model.flows import MAP_FULL, FlowMapFill
from vifscope.sources.flows.collector import KEY, VAL
from vifscope.sources.flows.libbpf import BpfUnavailable, LibBpf

INFO = struct.Struct("<IIIIII16s")  # struct bpf_map_info: type, id, key/value size, max_entries, flags, name
INFO_LEN = 96  # room for the whole struct as recent kernels define it; the kernel fills what it has
LRU_HASH = 9
NAME = b"flows"
CHUNK = 4096


def _info(bpf: LibBpf, fd: int) -> tuple[int, int, int, int, int, int, bytes] | None:
    buf = ctypes.create_string_buffer(INFO_LEN)
    size = ctypes.c_uint32(INFO_LEN)
    if bpf.call("bpf_obj_get_info_by_fd", fd, buf, ctypes.byref(size)) < 0:
        return None
    kind, map_id, key_size, value_size, max_entries, flags, name = INFO.unpack_from(buf.raw)
    return kind, map_id, key_size, value_size, max_entries, flags, name


def _ours(info: tuple[int, int, int, int, int, int, bytes]) -> bool:
    kind, _id, key_size, value_size, _max, _flags, name = info
    return kind == LRU_HASH and (key_size, value_size) == (KEY.size, VAL.size) and name.rstrip(b"\0") == NAME


def count_entries(bpf: LibBpf, fd: int, enough: int | None = None) -> int:
    """Entries in the map now (batch lookups of CHUNK; the values are read and dropped), or,
    once ``enough`` are counted, that many or a little more (up to a CHUNK): the caller only
    needs to know the map reached it, and a full 1M-entry map is 40 MB to copy."""
    keys = ctypes.create_string_buffer(KEY.size * CHUNK)
    vals = ctypes.create_string_buffer(VAL.size * CHUNK)
    token_in, token_out = ctypes.create_string_buffer(8), ctypes.create_string_buffer(8)
    total, first = 0, True
    while True:
        count = ctypes.c_uint32(CHUNK)
        rc = bpf.call(
            "bpf_map_lookup_batch", fd, None if first else token_in, token_out, keys, vals, ctypes.byref(count), None
        )
        total += count.value
        if rc == -errno.ENOENT or (enough is not None and total >= enough):
            return total
        if rc < 0:
            raise BpfUnavailable(bpf.why("reading a flow map failed", rc))
        ctypes.memmove(token_in, token_out, 8)
        first = False


def map_owners(wanted: set[int], proc: Path = Path("/proc")) -> dict[int, int]:
    """map id -> the pid of a process holding an fd to it (this one too: an exporter's own map;
    the fds this module opens are closed before it looks), for the ``wanted`` ids only: the walk
    (a readlink per fd of every process) stops once all are found."""
    owners: dict[int, int] = {}
    for pid_dir in proc.iterdir():
        if len(owners) == len(wanted):
            break
        if pid_dir.name.isdigit():
            _owned(pid_dir, wanted, owners)
    return owners


def _owned(pid_dir: Path, wanted: set[int], owners: dict[int, int]) -> None:
    try:
        fds = [fd for fd in (pid_dir / "fd").iterdir() if os.readlink(fd) == "anon_inode:bpf-map"]
        for fd in fds:
            for line in (pid_dir / "fdinfo" / fd.name).read_text().splitlines():
                if line.startswith("map_id:") and int(line.split()[1]) in wanted:
                    owners.setdefault(int(line.split()[1]), int(pid_dir.name))
    except OSError:  # the process or fd went meanwhile, or it is not ours to read
        return


def _argv(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(w.decode(errors="replace") for w in raw.split(b"\0")[:-1])


def _candidates(bpf: LibBpf, full: float) -> list[tuple[int, int, int]]:
    """(map id, entries, max_entries) of every map that looks like a collector's flow map;
    entries are counted up to ``full`` × max_entries (and a CHUNK) only."""
    found: list[tuple[int, int, int]] = []
    cur, nxt = 0, ctypes.c_uint32(0)
    while (rc := bpf.call("bpf_map_get_next_id", cur, ctypes.byref(nxt))) == 0:
        cur = nxt.value
        fd = bpf.call("bpf_map_get_fd_by_id", cur)
        if fd < 0:
            continue  # freed meanwhile
        try:
            info = _info(bpf, fd)
            if info is not None and _ours(info):
                found.append((cur, count_entries(bpf, fd, math.ceil(full * info[4])), info[4]))
        finally:
            os.close(fd)
    if rc != -errno.ENOENT:
        raise BpfUnavailable(bpf.why("listing BPF maps failed", rc), "run as root (CAP_SYS_ADMIN)", rc)
    return found


def read_flow_maps(full: float = MAP_FULL) -> tuple[FlowMapFill, ...] | None:
    """Live collectors' flow maps at ``full`` (a fraction of their size) or more, with their
    fill and owner; None when maps cannot be listed here. The fill of a map that reached it is
    counted up to there (a lower bound); maps below it are left out, and so are maps no process
    holds any more (being freed: a collector just exited). Doctor runs this in every deep
    snapshot: the cost stays a few batch lookups a map and one /proc walk only when one is full."""
    try:
        found = [m for m in _candidates(LibBpf(), full) if m[1] >= full * m[2]]
    except BpfUnavailable:
        return None
    if not found:
        return ()
    owners = map_owners({map_id for map_id, _e, _m in found})
    return tuple(
        FlowMapFill(map_id, entries, max_entries, owners[map_id], _argv(owners[map_id]))
        for map_id, entries, max_entries in found
        if map_id in owners
    )
