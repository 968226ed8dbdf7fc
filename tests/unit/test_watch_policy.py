"""Heal policy and scheduler: grace, back-off, rate limit, skips. The clock is passed in."""

from __future__ import annotations

import pytest

from tests.unit.ipjson import bridge, snapshot, tap
from vifscope.bind.join import bind
from vifscope.model import DeclaredVif, DomainState, VifBinding, VifStatus
from vifscope.watch.healing import HealResult, HealScheduler
from vifscope.watch.policy import HealHistory, HealPolicy, Verdict, decide
from vifscope.watch.state import vif_key

POLICY = HealPolicy(grace=0.2, max_heals=3, window=60.0, backoff_initial=1.0, backoff_max=4.0)


def binding(
    *, master: str | None = None, up: bool = True, link_state: str = "up", with_bridge: bool = True
) -> VifBinding:
    vif = DeclaredVif(
        domain="web1",
        domain_uuid="uuid-web1",
        domain_state=DomainState.RUNNING,
        index=0,
        type="bridge",
        mac="52:54:00:00:00:01",
        source="br0",
        target="vnet0",
        link_state=link_state,
    )
    links = [tap("vnet0", master=master, up=up)] + ([bridge("br0")] if with_bridge else [])
    [b] = bind(snapshot([vif], links))
    return b


DETACHED = binding()


def test_first_heal_waits_for_grace_then_goes() -> None:
    history = HealHistory()
    first = decide(DETACHED, POLICY, history, now=100.0)
    assert (first.verdict, first.at) == (Verdict.WAIT, pytest.approx(100.2))
    assert decide(DETACHED, POLICY, history, now=100.2).verdict is Verdict.HEAL


def test_backoff_doubles_and_is_capped() -> None:
    history = HealHistory()
    policy = HealPolicy(grace=0.0, max_heals=10, window=600.0, backoff_initial=1.0, backoff_max=4.0)
    key = vif_key(DETACHED.vif)
    waits = []
    now = 0.0
    for _ in range(5):
        d = decide(DETACHED, policy, history, now)
        if d.verdict is Verdict.WAIT:
            waits.append(round(d.at - now, 3))
            now = d.at
        assert decide(DETACHED, policy, history, now).verdict is Verdict.HEAL
        history.record(key, now)
    assert waits == [1.0, 2.0, 4.0, 4.0]


def test_rate_limit_then_allowed_again_after_the_window() -> None:
    history = HealHistory()
    key = vif_key(DETACHED.vif)
    for t in (0.0, 1.0, 3.0):
        history.record(key, t)
    limited = decide(DETACHED, POLICY, history, now=10.0)
    assert limited.verdict is Verdict.LIMITED
    assert limited.at == pytest.approx(60.0)  # the oldest heal leaves the window
    assert "3 times in 60 s" in limited.reason
    assert decide(DETACHED, POLICY, history, now=60.5).verdict is Verdict.HEAL


@pytest.mark.parametrize(
    ("b", "why"),
    [
        pytest.param(binding(link_state="down"), "link state='down'", id="libvirt-link-down"),
        pytest.param(binding(with_bridge=False), "bridge does not exist", id="bridge-missing"),
        pytest.param(binding(master="br0"), "verdict bound", id="bound"),
    ],
)
def test_never_healed(b: VifBinding, why: str) -> None:
    d = decide(b, POLICY, HealHistory(), now=5.0)
    assert d.verdict is Verdict.SKIP
    assert why in d.reason


def test_verdicts_and_domains_come_from_the_policy() -> None:
    only_down = HealPolicy(verdicts=frozenset({VifStatus.DOWN}), grace=0.0)
    assert "not in heal.verdicts" in decide(DETACHED, only_down, HealHistory(), 0.0).reason
    tap_down = binding(master="br0", up=False)
    assert tap_down.status is VifStatus.DOWN
    assert decide(tap_down, only_down, HealHistory(), 0.0).verdict is Verdict.HEAL
    other = HealPolicy(grace=0.0, domains=frozenset({"db1"}))
    assert decide(DETACHED, other, HealHistory(), 0.0).verdict is Verdict.SKIP
    by_uuid = HealPolicy(grace=0.0, domains=frozenset({"uuid-web1"}))
    assert decide(DETACHED, by_uuid, HealHistory(), 0.0).verdict is Verdict.HEAL


def test_flap_loop_hits_the_limit() -> None:
    """Another tool detaches the tap every 0.3 s for 5 minutes; we heal whenever allowed."""
    sched = HealScheduler(POLICY)
    heals: list[float] = []
    limited_notices = 0
    now = 0.0
    while now < 300.0:
        plan = sched.due([DETACHED], now)  # the other tool has just detached it again
        limited_notices += sum(n["event"] == "heal-limited" for n in plan.notices)
        if plan.heal_now:
            sched.healed([HealResult(DETACHED, "ok", ("ip link set vnet0 master br0",))], now)
            heals.append(now)
        now = round(now + 0.3, 1)
    # 3 heals per 60 s window at most, whatever the loop does: 5 windows -> at most 15.
    for start in range(0, 300, 10):
        assert sum(start <= h < start + 60 for h in heals) <= POLICY.max_heals
    assert 3 <= len(heals) <= 15
    assert heals[0] <= 0.3  # after the 0.2 s grace, on the loop's next 0.3 s tick
    assert heals[1] - heals[0] >= 1.0 and heals[2] - heals[1] >= 2.0  # back-off doubles
    assert limited_notices >= 1


def test_notices_once_per_episode_and_reset_when_healthy() -> None:
    sched = HealScheduler(HealPolicy(grace=0.0))
    link_down = binding(link_state="down")
    first = sched.due([link_down], 0.0)
    assert [n["event"] for n in first.notices] == ["heal-skipped"]
    assert sched.due([link_down], 1.0).notices == ()
    assert sched.due([binding(master="br0")], 2.0).notices == ()  # bound again: the episode ends
    assert len(sched.due([link_down], 3.0).notices) == 1


def test_nothing_to_do_is_not_retried_until_healthy() -> None:
    sched = HealScheduler(HealPolicy(grace=0.0))
    assert sched.due([DETACHED], 0.0).heal_now == (DETACHED,)
    sched.healed([HealResult(DETACHED, "nothing", (), "no safe fix")], 0.0)
    again = sched.due([DETACHED], 5.0)
    assert again.heal_now == () and again.notices == ()  # the heal line already said why
    sched.due([binding(master="br0")], 6.0)
    assert sched.due([DETACHED], 7.0).heal_now == (DETACHED,)
