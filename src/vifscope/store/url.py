"""Which database, and the ``[store]`` / ``[mac]`` settings of /etc/vifscope/vifscope.toml:

    [store]
    url = "postgresql+psycopg://vifscope@db.example/vifscope"   # many hosts, one set of pools
    [mac]
    quarantine_s = 3600    # a released MAC is not handed out again for this long

The URL is, first that is set: ``--db URL``; ``$VIFSCOPE_DB``; the config file's
``[store] url``; the embedded SQLite file /var/lib/vifscope/vifscope.db. The environment
beats the file, as ``$LIBVIRT_DEFAULT_URI`` beats libvirt's config: one shell or one test
can point elsewhere without editing the host-wide file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vifscope.model.mac import DEFAULT_QUARANTINE_S
from vifscope.model.tomlconf import toml_doc, toml_table

CONFIG_PATH = Path("/etc/vifscope/vifscope.toml")
DEFAULT_DB = Path("/var/lib/vifscope/vifscope.db")
ENV_URL = "VIFSCOPE_DB"


class StoreConfigError(ValueError):
    """The config file's [store] or [mac] table is not what this reader understands."""


@dataclass(frozen=True)
class StoreConfig:
    url: str | None = None
    quarantine_s: int = DEFAULT_QUARANTINE_S


def parse_store_config(text: str, where: str = str(CONFIG_PATH)) -> StoreConfig:
    doc = toml_doc(text, StoreConfigError, where)
    store = toml_table(doc, "store", StoreConfigError, where)
    mac = toml_table(doc, "mac", StoreConfigError, where)
    for table, known in ((store, {"url"}), (mac, {"quarantine_s"})):
        unknown = sorted(set(table) - known)
        if unknown:
            raise StoreConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    url = store.get("url")
    if url is not None and not (isinstance(url, str) and url):
        raise StoreConfigError(f"{where}: store.url must be a non-empty string, got {url!r}")
    quarantine = mac.get("quarantine_s", DEFAULT_QUARANTINE_S)
    if isinstance(quarantine, bool) or not isinstance(quarantine, int) or quarantine < 0:
        raise StoreConfigError(f"{where}: mac.quarantine_s must be a whole number of seconds >= 0, got {quarantine!r}")
    return StoreConfig(url, quarantine)


def load_store_config(path: Path = CONFIG_PATH) -> StoreConfig:
    """The defaults when the file is absent (most hosts have none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return StoreConfig()
    except OSError as exc:
        raise StoreConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_store_config(text, str(path))


def resolve_url(cli_url: str | None, env: Mapping[str, str], config: StoreConfig) -> str:
    return cli_url or env.get(ENV_URL) or config.url or f"sqlite:///{DEFAULT_DB}"


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL at all: it has no password field to hide
        return url
