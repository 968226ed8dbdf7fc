"""Doctor thresholds, from the ``[doctor]`` table of a TOML file (default
/etc/vifscope/vifscope.toml; ``doctor --config PATH`` overrides). Every key is optional:

    [doctor]
    txqueuelen_min = 500        # perf.txqueuelen_low: tap/macvtap txqueuelen below this
    somaxconn_min = 1024        # sysctl.somaxconn_low: net.core.somaxconn below this
    port_range_min = 10000      # sysctl.port_range_narrow: fewer local ports than this
    conntrack_max_min = 65536   # sysctl.conntrack_max_low: nf_conntrack_max below this
    conntrack_full_pct = 80.0   # conntrack.near_full: nf_conntrack_count above this % of max
    no_lease_grace_s = 120      # ip.no_lease: a guest this long up without a lease is reported
    skip = ["perf.no_vhost"]    # check ids never run

Other tables (e.g. ``[watch]``) belong to other commands and are ignored here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vifscope.model.tomlconf import toml_doc, toml_table

DEFAULT_PATH = Path("/etc/vifscope/vifscope.toml")


class ConfigError(ValueError):
    """The config file is unreadable, not TOML, or has an unknown key or a wrong type."""


@dataclass(frozen=True)
class DoctorConfig:
    txqueuelen_min: int = 500
    somaxconn_min: int = 1024
    port_range_min: int = 10000
    conntrack_max_min: int = 65536
    conntrack_full_pct: float = 80.0
    no_lease_grace_s: int = 120
    skip: tuple[str, ...] = ()


_TYPES: dict[str, tuple[type, ...]] = {
    "txqueuelen_min": (int,),
    "somaxconn_min": (int,),
    "port_range_min": (int,),
    "conntrack_max_min": (int,),
    "conntrack_full_pct": (int, float),
    "no_lease_grace_s": (int,),
    "skip": (list,),
}


def _value(key: str, raw: Any, path: Path) -> Any:
    value: Any = raw  # keeps Any: isinstance against a runtime tuple narrows to object
    want = _TYPES.get(key)
    if want is None:
        known = ", ".join(f.name for f in fields(DoctorConfig))
        raise ConfigError(f"{path}: unknown key doctor.{key} (known: {known})")
    if isinstance(raw, bool) or not isinstance(raw, want):
        raise ConfigError(f"{path}: doctor.{key} must be {' or '.join(t.__name__ for t in want)}, got {raw!r}")
    if key == "skip":
        if not all(isinstance(x, str) for x in value):
            raise ConfigError(f"{path}: doctor.skip must be a list of check ids")
        return tuple(value)
    return float(value) if key == "conntrack_full_pct" else value


def parse_config(text: str, path: Path = DEFAULT_PATH) -> DoctorConfig:
    table = toml_table(toml_doc(text, ConfigError, str(path)), "doctor", ConfigError, str(path))
    return DoctorConfig(**{key: _value(key, raw, path) for key, raw in table.items()})


def load_config(path: Path | None = None) -> DoctorConfig:
    """``path`` given: it must exist. Default path: absent means the built-in defaults."""
    target = path or DEFAULT_PATH
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if path is None:
            return DoctorConfig()
        raise ConfigError(f"{target}: no such file") from exc
    except OSError as exc:
        raise ConfigError(f"{target}: {exc.strerror or exc}") from exc
    return parse_config(text, target)
