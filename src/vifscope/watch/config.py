"""``watch`` configuration: a TOML file (default /etc/vifscope/watch.toml, optional).

SIGHUP re-reads it; a broken file keeps the previous configuration and says why.

    [watch]
    resync_interval = 60     # seconds between full resyncs (the safety net)
    debounce = 0.02          # seconds to gather a burst of link events into one dump

    [heal]
    verdicts = ["detached", "misbound", "down"]
    grace = 0.2              # seconds a vif must stay broken before a heal
    max_heals = 5            # per vif, inside window
    window = 300
    backoff_initial = 1.0    # before the 2nd heal inside window; doubles each time
    backoff_max = 120
    domains = []             # only these domains (names or UUIDs); empty: all
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vifscope.model import VifStatus
from vifscope.model.tomlconf import toml_doc, toml_table
from vifscope.watch.policy import HealPolicy

DEFAULT_PATH = Path("/etc/vifscope/watch.toml")


class ConfigError(ValueError):
    """The configuration file is unreadable or has a wrong key or value."""


@dataclass(frozen=True)
class WatchConfig:
    resync_interval: float = 60.0
    debounce: float = 0.02
    heal: HealPolicy = field(default_factory=HealPolicy)


def _number(name: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"{name} must be a number >= {minimum}, got {value!r}")
    return float(value)


def _verdicts(value: Any) -> frozenset[VifStatus]:
    if not isinstance(value, list):
        raise ConfigError(f"heal.verdicts must be a list, got {value!r}")
    try:
        return frozenset(VifStatus(v) for v in value)
    except ValueError as exc:
        raise ConfigError(f"heal.verdicts: {exc}; choose from {', '.join(s.value for s in VifStatus)}") from exc


def _names(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"heal.domains must be a list of names, got {value!r}")
    return frozenset(value)


# How each [heal] key is checked and converted (a table, not an if-ladder).
HEAL_KEYS: dict[str, Callable[[Any], Any]] = {
    "verdicts": _verdicts,
    "grace": lambda v: _number("heal.grace", v, 0),
    "max_heals": lambda v: int(_number("heal.max_heals", v, 1)),
    "window": lambda v: _number("heal.window", v, 0),
    "backoff_initial": lambda v: _number("heal.backoff_initial", v, 0),
    "backoff_max": lambda v: _number("heal.backoff_max", v, 0),
    "domains": _names,
}
WATCH_KEYS: dict[str, Callable[[Any], Any]] = {
    "resync_interval": lambda v: _number("watch.resync_interval", v, 1),
    "debounce": lambda v: _number("watch.debounce", v, 0),
}


def _section(doc: Mapping[str, Any], name: str, keys: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
    raw = toml_table(doc, name, ConfigError)
    unknown = set(raw) - set(keys)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(sorted(unknown))}")
    return {k: keys[k](v) for k, v in raw.items()}


def parse_config(text: str) -> WatchConfig:
    doc = toml_doc(text, ConfigError)
    unknown = set(doc) - {"watch", "heal"}
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    heal = HealPolicy(**_section(doc, "heal", HEAL_KEYS))
    return WatchConfig(heal=heal, **_section(doc, "watch", WATCH_KEYS))


def load_config(path: Path | None) -> WatchConfig:
    """The given file (must exist), else the default path if present, else defaults."""
    if path is None:
        if not DEFAULT_PATH.exists():
            return WatchConfig()
        path = DEFAULT_PATH
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return parse_config(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def describe(config: WatchConfig) -> dict[str, Any]:
    """The effective configuration as JSON-ready data (printed at start and on reload)."""
    heal = {f.name: getattr(config.heal, f.name) for f in fields(config.heal)}
    heal["verdicts"] = sorted(s.value for s in config.heal.verdicts)
    heal["domains"] = sorted(config.heal.domains)
    return {"resync_interval": config.resync_interval, "debounce": config.debounce, "heal": heal}
