"""The fleet's inventory in the store (``fleet_inventory``): add, remove and list hosts.

Rows are stored as given; the caller checks an entry (vifscope.fleet.inventory's rules)
before adding it, and again when reading it back (the table may have been edited by hand).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from vifscope.store.fleet import store_errors
from vifscope.store.tables import fleet_inventory


@dataclass(frozen=True)
class InventoryRow:
    name: str
    url: str
    token_file: str | None = None
    ca_file: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def entry(self) -> dict[str, Any]:
        """As an inventory file's host entry (only the keys that are set)."""
        raw: dict[str, Any] = {"name": self.name, "url": self.url, "labels": dict(self.labels)}
        return raw | {k: v for k, v in (("token_file", self.token_file), ("ca_file", self.ca_file)) if v}


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    try:
        doc = json.loads(text)
    except ValueError:
        return (("", text),)  # not JSON: the entry's check reports it
    return tuple(sorted((str(k), str(v)) for k, v in doc.items())) if isinstance(doc, dict) else (("", text),)


def list_hosts(engine: Engine) -> list[InventoryRow]:
    cols = (fleet_inventory.c[c] for c in ("name", "url", "token_file", "ca_file", "labels"))
    with store_errors(), engine.connect() as conn:
        rows = conn.execute(select(*cols).order_by(fleet_inventory.c.name)).all()
    return [InventoryRow(r.name, r.url, r.token_file, r.ca_file, _labels(r.labels)) for r in rows]


def add_host(engine: Engine, row: InventoryRow, replace: bool = False) -> bool:
    """Add ``row``; False when its name is taken (and ``replace`` is not set)."""
    values = {
        "url": row.url,
        "token_file": row.token_file,
        "ca_file": row.ca_file,
        "labels": json.dumps(dict(row.labels), sort_keys=True),
        "added_at": time.time(),
    }
    with store_errors():
        try:
            with engine.begin() as conn:
                if replace:
                    conn.execute(delete(fleet_inventory).where(fleet_inventory.c.name == row.name))
                conn.execute(fleet_inventory.insert().values(name=row.name, **values))
        except IntegrityError:
            return False
    return True


def remove_host(engine: Engine, name: str) -> bool:
    """False when there is no such host."""
    with store_errors(), engine.begin() as conn:
        gone = conn.execute(delete(fleet_inventory).where(fleet_inventory.c.name == name)).rowcount
    return bool(gone)
