"""The running kernel's build options, from ``/proc/config.gz`` (CONFIG_IKCONFIG_PROC): what
libvirt's ``<bandwidth>`` needs is known before a domain fails to start for want of it."""

from __future__ import annotations

import gzip
from pathlib import Path

from vifscope.model import Shaping

KERNEL_CONFIG = Path("/proc/config.gz")


def parse_kernel_config(text: str) -> Shaping:
    """What libvirt's <bandwidth> needs, from the kernel's config: sfq for <inbound>, the
    police action for <outbound> (built in or a module)."""
    options = dict(line.split("=", 1) for line in text.splitlines() if line.startswith("CONFIG_") and "=" in line)
    return Shaping(
        sfq=options.get("CONFIG_NET_SCH_SFQ") in ("y", "m"),
        police=options.get("CONFIG_NET_ACT_POLICE") in ("y", "m"),
    )


def read_shaping(path: Path = KERNEL_CONFIG) -> Shaping | None:
    """None when the kernel does not publish its config (CONFIG_IKCONFIG_PROC off): then the
    bandwidth check is not evaluated rather than guessed."""
    try:
        return parse_kernel_config(gzip.decompress(path.read_bytes()).decode("utf-8", "replace"))
    except FileNotFoundError:
        return None
