"""The few libbpf.so.1 calls flows needs, over ctypes (no PyPI binding iterates LRU maps).

Only libbpf's stable 1.x ABI is used (Debian 12 ships 1.1): object open/load, program and map
fds, ``bpf_link_create`` and the batch/elem map calls. libbpf 1.1 has no TCX helpers, so a TCX
link is made with ``bpf_link_create(prog_fd, ifindex, BPF_TCX_INGRESS/EGRESS)``: its generic
path passes the attach type through to the kernel, which is all TCX needs.

libbpf's own log lines (why the verifier or the kernel refused) are captured, not printed:
they become the reason of a BpfUnavailable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable
from typing import Any

BPF_TCX_INGRESS = 46  # enum bpf_attach_type (linux 6.6+); Debian 12's headers predate it
BPF_TCX_EGRESS = 47
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class BpfUnavailable(Exception):
    """BPF cannot be used here: ``reason`` is one line, ``hint`` what to do about it."""

    def __init__(self, reason: str, hint: str = "", code: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.code = abs(code)  # the errno, when a call failed with one


def _errtext(code: int) -> str:
    code = abs(code)
    return f"{errno.errorcode.get(code, str(code))} ({os.strerror(code)})"


class LibBpf:
    """libbpf.so.1 with argument types declared; ``log`` keeps libbpf's last messages."""

    def __init__(self) -> None:
        try:
            self.lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
        except OSError as exc:
            raise BpfUnavailable(f"libbpf.so.1 not loadable: {exc}", "apt-get install libbpf1") from exc
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.log: list[str] = []
        self._declare()
        self._printer = _PRINT_FN(self._print)  # kept referenced: libbpf holds the pointer
        self.lib.libbpf_set_print(self._printer)

    def _print(self, level: int, fmt: bytes | None, args: int | None) -> int:
        buf = ctypes.create_string_buffer(1024)
        self.libc.vsnprintf(buf, len(buf), fmt, ctypes.c_void_p(args))
        line = buf.value.decode(errors="replace").strip().removeprefix("libbpf: ")
        if line and level <= 1:  # LIBBPF_WARN = 0, LIBBPF_INFO = 1; DEBUG is the verifier's chatter
            self.log = [*self.log[-20:], line]
        return 0

    def _declare(self) -> None:
        vp, ci, cu, cs = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_char_p
        sigs: dict[str, tuple[Any, list[Any]]] = {
            "libbpf_set_print": (vp, [_PRINT_FN]),
            "bpf_object__open_file": (vp, [cs, vp]),
            "bpf_object__load": (ci, [vp]),
            "bpf_object__close": (None, [vp]),
            "bpf_object__find_map_by_name": (vp, [vp, cs]),
            "bpf_object__find_program_by_name": (vp, [vp, cs]),
            "bpf_map__set_max_entries": (ci, [vp, cu]),
            "bpf_map__fd": (ci, [vp]),
            "bpf_program__fd": (ci, [vp]),
            "bpf_link_create": (ci, [ci, ci, ci, vp]),
            "bpf_map_lookup_batch": (ci, [ci, vp, vp, vp, vp, ctypes.POINTER(cu), vp]),
            "bpf_map_lookup_elem": (ci, [ci, vp, vp]),
            "bpf_map_update_elem": (ci, [ci, vp, vp, ctypes.c_uint64]),
            "bpf_map_delete_elem": (ci, [ci, cs]),
            "bpf_map_get_next_key": (ci, [ci, vp, vp]),
            "libbpf_num_possible_cpus": (ci, []),
            "bpf_map_get_next_id": (ci, [cu, ctypes.POINTER(cu)]),
            "bpf_map_get_fd_by_id": (ci, [cu]),
            "bpf_obj_get_info_by_fd": (ci, [ci, vp, ctypes.POINTER(cu)]),
        }
        for name, (res, argtypes) in sigs.items():
            fn = getattr(self.lib, name)
            fn.restype, fn.argtypes = res, argtypes
        self.libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
        self.libc.vsnprintf.restype = ctypes.c_int

    def why(self, what: str, code: int) -> str:
        """One line: what failed, the errno, and libbpf's last message when it said one."""
        last = self.log[-1] if self.log else ""
        self.log = []  # the next failure's message is its own
        return f"{what}: {_errtext(code)}" + (f" — libbpf: {last}" if last else "")

    def call(self, name: str, *args: Any) -> Any:
        fn: Callable[..., Any] = getattr(self.lib, name)
        return fn(*args)


def hint_for(code: int) -> str:
    """What a user can do about a failed load or attach, by errno."""
    code = abs(code)
    if code == errno.EPERM:
        return "run as root (CAP_BPF + CAP_NET_ADMIN), and check kernel lockdown (/sys/kernel/security/lockdown)"
    if code in (errno.EINVAL, errno.EOPNOTSUPP, 524):  # 524: the kernel's ENOTSUPP
        return "TCX attach needs Linux 6.6 or later with CONFIG_NET_XGRESS and the BPF classifier"
    if code == errno.ENOENT:
        return "the BPF object is missing: run scripts/setup.sh (it compiles it with clang)"
    return "see `vifscope doctor` (flows.unavailable)"
