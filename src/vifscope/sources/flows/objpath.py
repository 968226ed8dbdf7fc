"""Which compiled flow program to load: the one scripts/setup.sh built from the current source
(``bpf/build/flows.bpf.o``, stamped with the source's sha256), else the prebuilt copy shipped
beside the source (``bpf/flows.bpf.o``) for hosts without clang."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

from vifscope.sources.flows.libbpf import BpfUnavailable, hint_for

BPF_DIR = Path(__file__).resolve().parent / "bpf"
SOURCE = BPF_DIR / "flows.bpf.c"
PREBUILT = BPF_DIR / "flows.bpf.o"
BUILT = BPF_DIR / "build" / "flows.bpf.o"
BUILT_STAMP = BPF_DIR / "build" / "flows.bpf.c.sha256"


def source_digest(source: Path = SOURCE) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


def program_object() -> tuple[Path, str]:
    """(the object's path, "built" or "prebuilt")."""
    try:
        fresh = BUILT.is_file() and BUILT_STAMP.read_text().strip() == source_digest()
    except OSError:
        fresh = False
    if fresh:
        return BUILT, "built"
    if PREBUILT.is_file():
        return PREBUILT, "prebuilt"
    raise BpfUnavailable(f"no compiled flow program at {BUILT} or {PREBUILT}", hint_for(errno.ENOENT))
