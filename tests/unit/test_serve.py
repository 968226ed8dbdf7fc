"""``vifscope serve`` pieces that need no server: settings, the token check, the live diff,
the single-flight snapshot cache. (The HTTP API itself is tested on a real uvicorn server
in tests/e2e/test_serve_e2e.py.)"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path

import pytest

from tests.unit.ipjson import bridge, snapshot, tap
from tests.unit.test_topology import vif
from vifscope.bind.join import bind
from vifscope.model import HostSnapshot, LinkStats
from vifscope.serve.config import (
    ServeConfig,
    ServeConfigError,
    is_loopback,
    load_token,
    parse_listen,
    parse_serve_config,
    with_overrides,
)
from vifscope.serve.live import diff
from vifscope.serve.mutate import Auth
from vifscope.serve.state import Snapshots, View

TOKEN = "0123456789abcdef0123"


def test_serve_table_and_doctor_table_share_one_file(tmp_path: Path) -> None:
    text = '[serve]\nlisten = "[::1]:9000"\ntoken_file = "/etc/t"\ninterval = 2\n[doctor]\ntxqueuelen_min = 7\n'
    cfg = parse_serve_config(text, tmp_path / "v.toml")
    assert cfg.listen == "[::1]:9000" and cfg.token_file == Path("/etc/t") and cfg.interval == 2.0
    assert cfg.doctor.txqueuelen_min == 7
    assert with_overrides(cfg, listen="127.0.0.1:1", interval=None).listen == "127.0.0.1:1"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[serve]\nport = 1\n", "unknown key serve.port"),
        ('[serve]\ninterval = "fast"\n', "wrong type"),
        ("[serve]\ntimeout = 0\n", "must be > 0"),
        ("[serve\n", "not valid TOML"),
    ],
)
def test_bad_settings_say_what_is_wrong(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ServeConfigError, match=words):
        parse_serve_config(text, tmp_path / "v.toml")


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:8777") == ("127.0.0.1", 8777)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8777", ":8777", "host:port", "h:70000"):
        with pytest.raises(ServeConfigError):
            parse_listen(bad)
    assert is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("example.org")


def test_token_file_must_be_private_and_long(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    os.chmod(path, 0o600)
    assert load_token(path) == TOKEN
    os.chmod(path, 0o644)
    with pytest.raises(ServeConfigError, match="readable by other users"):
        load_token(path)
    os.chmod(path, 0o600)
    path.write_text("short")
    with pytest.raises(ServeConfigError, match="at least 16"):
        load_token(path)
    with pytest.raises(ServeConfigError, match="cannot read"):
        load_token(tmp_path / "absent")


def test_token_check() -> None:
    auth = Auth(TOKEN)
    assert auth.refusal(f"Bearer {TOKEN}") is None
    assert auth.refusal(f"bearer {TOKEN}") is None
    for header in (None, "", "Bearer", f"Basic {TOKEN}", "Bearer wrong-token-wrong-token", f"Bearer {TOKEN}x"):
        resp = auth.refusal(header)
        assert resp is not None and resp.status_code == 401, header
        assert resp.headers["www-authenticate"].startswith("Bearer")
    readonly = Auth(None).refusal(f"Bearer {TOKEN}")
    assert readonly is not None and readonly.status_code == 403


def _view(snap: HostSnapshot) -> View:
    return View(snap, bind(snap), 0.0)


def _web(master: str | None, rx: int = 0) -> HostSnapshot:
    link = tap("vnet0", master=master)
    snap = snapshot([vif("web", "bridge", "br0", "vnet0", mac="52:54:00:00:00:01")], [bridge("br0"), link])
    return dataclasses.replace(
        snap, links=tuple(dataclasses.replace(x, stats=LinkStats(rx_bytes=rx)) for x in snap.links)
    )


def test_diff_ignores_counters_and_reports_verdict_changes() -> None:
    base = _web("br0", rx=1)
    same_uuid = dataclasses.replace(_web("br0", rx=999), vifs=base.vifs)
    assert diff(_view(base), _view(same_uuid)).empty
    detached = dataclasses.replace(_web(None), vifs=base.vifs)
    change = diff(_view(base), _view(detached))
    assert [d["status"] for d in change.changed] == ["detached"]
    assert change.topology  # its declared edge broke: the page redraws the graph
    down = dataclasses.replace(
        base, links=tuple(dataclasses.replace(x, admin_up=x.name != "vnet0") for x in base.links)
    )
    change = diff(_view(base), _view(down))
    assert [d["status"] for d in change.changed] == ["down"] and not change.topology  # recolour only
    gone = dataclasses.replace(base, vifs=())
    assert diff(_view(base), _view(gone)).removed == ((base.vifs[0].domain_uuid, 0),)
    assert diff(None, _view(base)).topology  # a first look is a full redraw


def test_snapshots_are_single_flight_and_invalidated() -> None:
    calls: list[float] = []

    def take() -> HostSnapshot:
        calls.append(time.monotonic())
        time.sleep(0.2)
        return _web("br0")

    snaps = Snapshots(take)
    views: list[View] = []
    threads = [threading.Thread(target=lambda: views.append(snaps.get(5.0))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(v) for v in views}) == 1
    assert snaps.get(5.0) is views[0]
    snaps.invalidate()
    assert snaps.get(5.0) is not views[0] and len(calls) == 2
    fresh = snaps.get(0.0)  # max_age 0: always a new snapshot
    assert len(calls) == 3 and snaps.latest() is fresh


def test_requests_during_a_slow_take_share_it_and_a_change_is_never_served_stale() -> None:
    """A take longer than ``max_age`` (5,000 vifs: a second, the live feed's age is one) is still
    shared by every request that arrived during it: no convoy of one snapshot per waiter. A
    request made after invalidate() does not get a take started before the change, and two
    takes never run at once. The take blocks on an Event, so every request arrived during it."""
    release, lock = threading.Event(), threading.Lock()
    takes, active, most = [0], [0], [0]

    def take() -> HostSnapshot:
        with lock:
            takes[0] += 1
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            assert release.wait(30)
            return _web("br0")
        finally:
            with lock:
                active[0] -= 1

    snaps = Snapshots(take)
    views: list[View] = []
    threads = [threading.Thread(target=lambda: views.append(snaps.get(0.0)), daemon=True) for _ in range(10)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while snaps.flight.waiting < 9:
        assert time.monotonic() < deadline, "10 requests: one takes, 9 wait"
        time.sleep(0.01)
    snaps.invalidate()  # a change made through the API while the take runs
    after: list[View] = []
    late = threading.Thread(target=lambda: after.append(snaps.get(5.0)), daemon=True)
    late.start()
    release.set()
    for t in [*threads, late]:
        t.join(30)
    assert len(views) == 10 and len({id(v) for v in views}) == 1
    assert takes[0] == 2 and most[0] == 1
    assert after[0] is not views[0] and after[0].generation > views[0].generation


def test_default_settings_are_loopback_and_read_only() -> None:
    cfg = ServeConfig()
    assert is_loopback(parse_listen(cfg.listen)[0]) and cfg.token_file is None


def test_a_views_answer_is_built_once_for_every_reader_and_errors_are_not_kept() -> None:
    """Ten readers of one route during the build share it; another route builds its own; a
    failed build is raised in everyone who waited and the next reader builds again."""
    view = _view(_web("br0"))
    release, builds = threading.Event(), []

    def slow() -> tuple[int, bytes]:
        builds.append("vifs")
        release.wait(5)
        return 200, b"{}"

    got: list[tuple[int, bytes]] = []
    readers = [threading.Thread(target=lambda: got.append(view.rendered(("vifs",), slow))) for _ in range(10)]
    for t in readers:
        t.start()
    deadline = time.monotonic() + 5
    while view._building.waiting < 9 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for t in readers:
        t.join(5)
    assert builds == ["vifs"] and got == [(200, b"{}")] * 10
    assert view.rendered(("vifs",), slow) == (200, b"{}") and builds == ["vifs"]  # kept for this view

    def broken() -> tuple[int, bytes]:
        builds.append("broken")
        raise RuntimeError("source gone")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            view.rendered(("topology",), broken)
    assert builds == ["vifs", "broken", "broken"]
    assert _view(_web("br0")).rendered(("vifs",), lambda: (200, b"[]")) == (200, b"[]")  # a new view, a new build
