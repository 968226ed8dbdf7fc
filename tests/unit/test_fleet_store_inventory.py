"""The fleet's inventory in the store (SQLite here; tests/integration/test_fleet_store_inventory.py
runs the commands on PostgreSQL too), the hub's answer cache and /api/v1/host's ETag."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.unit.fleetdocs import agent_docs, answer, guest
from vifscope.cli.main import main
from vifscope.fleet.cache import AnswerCache
from vifscope.fleet.inventory import FleetHost, InventoryError, inventory_of_entries
from vifscope.serve.etag import content_tag
from vifscope.sources.agents import AgentReply, Held
from vifscope.store.engine import open_store
from vifscope.store.inventory import InventoryRow, add_host, list_hosts, remove_host

WEB = "52:54:00:00:00:01"


def test_rows_round_trip_and_a_name_is_taken_once(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'inv.db'}")
    row = InventoryRow("kvm-a1", "https://10.0.0.11:8777/", "/etc/t", None, (("rack", "r3"), ("segment", "s1")))
    assert add_host(engine, row) is True
    assert add_host(engine, InventoryRow("kvm-a1", "http://x/")) is False
    assert list_hosts(engine) == [row]
    assert add_host(engine, InventoryRow("kvm-a1", "http://x/"), replace=True) is True
    assert [r.url for r in list_hosts(engine)] == ["http://x/"]
    assert remove_host(engine, "kvm-a1") is True and remove_host(engine, "kvm-a1") is False
    assert list_hosts(engine) == []


def test_the_tables_entries_are_checked_by_the_files_rules() -> None:
    inv = inventory_of_entries([{"name": "a", "url": "http://10.0.0.1:8777", "labels": {"segment": "s"}}], "db")
    assert inv.hosts == (FleetHost("a", "http://10.0.0.1:8777/", None, (("segment", "s"),)),)
    with pytest.raises(InventoryError, match="no hosts") as exc:
        inventory_of_entries([], "db")
    assert "fleet hosts add" in exc.value.hint
    with pytest.raises(InventoryError, match=r"db \(b\): url 'ftp://x/' is not an http\(s\) URL"):
        inventory_of_entries([{"name": "b", "url": "ftp://x/"}], "db")
    with pytest.raises(InventoryError, match="labels must be a mapping"):  # a hand-edited labels column
        inventory_of_entries([{"name": "b", "url": "http://x/", "labels": "rack"}], "db")


def test_the_hosts_commands_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'f.db'}"
    assert main(["fleet", "hosts", "add", "a1", "http://127.0.0.1:9/", "--label", "segment=s1", "--db", db]) == 0
    assert main(["fleet", "hosts", "add", "a1", "http://127.0.0.1:9/", "--db", db]) == 2
    assert main(["fleet", "hosts", "add", "a2", "http://127.0.0.1:9/?x=1", "--db", db]) == 2
    capsys.readouterr()
    assert main(["fleet", "hosts", "list", "--json", "--db", db]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["hosts"] == [{"name": "a1", "url": "http://127.0.0.1:9/", "labels": {"segment": "s1"}}]
    assert main(["fleet", "hosts", "remove", "nosuch", "--db", db]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["fleet", "hosts", "add", "a3", "http://x/", "--label", "novalue", "--db", db])
    assert exc.value.code == 2


@pytest.mark.parametrize("argv", [["fleet", "status"], ["fleet", "doctor", "--inventory", "f", "--db", "sqlite://"]])
def test_status_and_doctor_want_exactly_one_inventory(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def _reply(name: str, unchanged: bool, etag: str = 'W/"1"') -> AgentReply:
    return AgentReply(name, (), None, 0.01, (("api/v1/vifs", Held(etag, b"{}")),), unchanged)


def test_the_cache_holds_an_answer_per_host_and_url() -> None:
    cache = AnswerCache()
    a = answer("h1", [guest("web", WEB)])
    cache.keep(a.host, _reply("h1", False), a)
    assert cache.held(a.host) == (("api/v1/vifs", Held('W/"1"', b"{}")),)
    kept = cache.last(a.host, 0.5)
    assert kept is not None and kept.vifs == a.vifs and kept.seconds == 0.5
    moved = FleetHost("h1", "http://elsewhere:8777/")
    assert cache.held(moved) == () and cache.last(moved, 0.1) is None  # another agent: asked afresh
    cache.keep(a.host, AgentReply("h1", (), "timed out", 3.0))  # an error keeps the last good copy
    assert cache.held(a.host)
    cache.prune({"other"})
    assert cache.held(a.host) == ()


def test_an_unchanged_reply_can_be_made_whole_again() -> None:
    reply = AgentReply("h1", (), None, 0.01, (("api/v1/vifs", Held('W/"1"', b'{"vifs": []}')),), True)
    assert reply.whole().answers == (("api/v1/vifs", {"vifs": []}),) and not reply.whole().unchanged


def test_the_host_documents_tag_leaves_the_uptimes_out() -> None:
    info, _ = agent_docs("h1", [guest("web", WEB)])

    def tag(**changes: object) -> str:
        return content_tag(json.dumps({**info, **changes}, separators=(",", ":")).encode())

    assert tag(uptime_s=1.5, agent_uptime_s=2.0) == tag(uptime_s=99.0, agent_uptime_s=time.time())
    assert tag(uptime_s=None) == tag(uptime_s=3.5)
    assert tag(status="degraded") != tag(status="ok")
    assert tag(vifs=2) != tag(vifs=1)


def test_a_touch_needs_the_rows_to_be_from_the_same_answer(tmp_path: Path) -> None:
    """Another hub may have written a newer answer since: then the 304 is no reason to skip."""
    from vifscope.cli.fleet_sync import write
    from vifscope.fleet.cache import answer_tag
    from vifscope.fleet.history import sync_input
    from vifscope.store.fleet import touch_host

    engine = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    tagged = AgentReply("h1", (("api/v1/vifs", {}),), None, 0.01, (("api/v1/vifs", Held('W/"1"', b"{}")),))
    tag = answer_tag(tagged)
    assert tag == 'api/v1/vifs=W/"1"' and answer_tag(_reply("h1", True)) == tag
    assert answer_tag(AgentReply("h1", (("api/v1/host", None), ("api/v1/vifs", {})), None, 0.0, tagged.held)) is None
    assert touch_host(engine, "h1", tag, 1.0) is None  # nothing written yet
    write(engine, sync_input(answer("h1", [guest("web", WEB)])), 2.0, tag)
    assert touch_host(engine, "h1", tag, 3.0) == 1
    assert touch_host(engine, "h1", 'api/v1/vifs=W/"2"', 4.0) is None
    write(engine, sync_input(answer("h1", [guest("web", WEB)])), 5.0, None)  # an untagged writer
    assert touch_host(engine, "h1", tag, 6.0) is None
