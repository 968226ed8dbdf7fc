"""The heal pass as stages: a vif table, a scheduler and the clock in, effects out (no engine)."""

from __future__ import annotations

from tests.unit.ipjson import bridge, snapshot, tap
from vifscope.model import DeclaredVif, DomainState
from vifscope.watch.effects import Arm, Emit, Heal, ReadDomain, RefreshLinks, RefreshOvs, Scope
from vifscope.watch.heal_run import HealStep, HealView, Stage, heal_step, healed
from vifscope.watch.healing import HealResult, HealScheduler
from vifscope.watch.policy import HealPolicy
from vifscope.watch.state import TouchesLinks, VifTable

POLICY = HealPolicy(grace=0.2, max_heals=3, window=60.0, backoff_initial=1.0, backoff_max=4.0)
T0 = 100.0


def vif(domain: str, target: str, *, index: int = 0, **kw: object) -> DeclaredVif:
    fields: dict[str, object] = {
        "domain": domain,
        "domain_uuid": f"uuid-{domain}",
        "domain_state": DomainState.RUNNING,
        "index": index,
        "type": "bridge",
        "mac": f"52:54:00:00:00:{int(target.removeprefix('vnet')):02x}",
        "source": "br0",
        "target": target,
    }
    fields.update(kw)
    return DeclaredVif(**fields)  # type: ignore[arg-type]


def host(*, web1_plugged: bool = False, **web1: object) -> VifTable:
    """web1 (detached unless plugged), db1 bound, two with both NICs detached, ovs1 off its bridge."""
    vifs = [
        vif("web1", "vnet0", **web1),
        vif("db1", "vnet1"),
        vif("two", "vnet2"),
        vif("two", "vnet3", index=1),
        vif("ovs1", "vnet5", source="ovsbr", virtualport="openvswitch"),
    ]
    links = [bridge("br0"), tap("vnet0", master="br0" if web1_plugged else None), tap("vnet1", master="br0")]
    links += [tap("vnet2"), tap("vnet3"), tap("vnet5")]
    return VifTable(snapshot(vifs, links, ovs_bridges=["ovsbr"], ovs_available=True))


def step(
    stage: Stage, table: VifTable, scheduler: HealScheduler, now: float, *, scope: Scope | None = None
) -> HealStep:
    return heal_step(stage, HealView(table, scope or Scope(), now, libvirt_up=True), scheduler)


def web1_only() -> Scope:
    return Scope(frozenset({"web1"}))


def test_a_new_break_waits_for_its_grace() -> None:
    scheduler = HealScheduler(POLICY)
    assert step(Stage.CHECK, host(), scheduler, T0) == HealStep((Arm("heal", T0 + 0.2),), None)


def test_no_heal_pass_while_libvirt_is_down() -> None:
    scheduler = HealScheduler(POLICY)
    down = heal_step(Stage.CHECK, HealView(host(), Scope(), T0, libvirt_up=False), scheduler)
    assert down == HealStep((), None)  # no wake either: the reconnect's resync asks again
    # Nothing was planned meanwhile: the grace still starts when the pass first looks.
    assert step(Stage.CHECK, host(), scheduler, T0 + 5).effects == (Arm("heal", T0 + 5.2),)


def test_no_heal_when_the_check_found_libvirt_gone() -> None:
    """The CHECK stage's domain read can be what finds libvirtd hung: HEAL must not go on."""
    scheduler = HealScheduler(POLICY)
    t = T0 + 1.0
    assert step(Stage.CHECK, host(), scheduler, T0).effects == (Arm("heal", T0 + 0.2),)
    assert step(Stage.CHECK, host(), scheduler, t).then is Stage.HEAL  # past the grace: due
    down = heal_step(Stage.HEAL, HealView(host(), Scope(), t, libvirt_up=False), scheduler)
    assert down == HealStep((), None)


def test_due_vifs_are_looked_at_again_before_healing() -> None:
    scheduler = HealScheduler(POLICY)
    step(Stage.CHECK, host(), scheduler, T0, scope=web1_only())
    check = step(Stage.CHECK, host(), scheduler, T0 + 0.2, scope=web1_only())
    assert check == HealStep(
        (ReadDomain("uuid-web1", "heal-check"), RefreshLinks(TouchesLinks(frozenset({"vnet0"})), "heal-check")),
        Stage.HEAL,
    )


def test_one_domain_read_per_domain_and_ovs_read_for_ovs_ports() -> None:
    scheduler = HealScheduler(POLICY)
    step(Stage.CHECK, host(), scheduler, T0)
    effects = step(Stage.CHECK, host(), scheduler, T0 + 0.2).effects
    reads = [e.uuid for e in effects if isinstance(e, ReadDomain)]
    assert sorted(reads) == ["uuid-ovs1", "uuid-two", "uuid-web1"]  # not db1: bound
    [links] = [e for e in effects if isinstance(e, RefreshLinks)]
    assert links == RefreshLinks(TouchesLinks(frozenset({"vnet0", "vnet2", "vnet3", "vnet5"})), "heal-check")
    assert effects[-1] == RefreshOvs("heal-check")  # after the links, as heal does


def test_still_broken_after_the_look_is_healed_and_looked_at_again() -> None:
    scheduler = HealScheduler(POLICY)
    step(Stage.CHECK, host(), scheduler, T0, scope=web1_only())
    step(Stage.CHECK, host(), scheduler, T0 + 0.2, scope=web1_only())
    table = host()
    web1 = table.bindings[("uuid-web1", "52:54:00:00:00:00")]
    heal = step(Stage.HEAL, table, scheduler, T0 + 0.21, scope=web1_only())
    assert heal == HealStep((Heal((web1,)), RefreshLinks(TouchesLinks(frozenset({"vnet0"})), "heal")), Stage.SETTLE)


def test_fixed_meanwhile_is_not_healed() -> None:
    """Between the check and the heal, libvirt (or a person) plugged it back."""
    scheduler = HealScheduler(POLICY)
    step(Stage.CHECK, host(), scheduler, T0, scope=web1_only())
    assert step(Stage.CHECK, host(), scheduler, T0 + 0.2, scope=web1_only()).then is Stage.HEAL
    plugged = host(web1_plugged=True)
    assert step(Stage.HEAL, plugged, scheduler, T0 + 0.21, scope=web1_only()) == HealStep((Arm("heal", None),), None)


def test_settle_never_heals_and_sets_the_next_wake() -> None:
    scheduler = HealScheduler(POLICY)
    step(Stage.CHECK, host(), scheduler, T0, scope=web1_only())
    settle = step(Stage.SETTLE, host(), scheduler, T0 + 0.5, scope=web1_only())
    assert settle == HealStep((Arm("heal", None),), None)  # due now, but a pass heals once
    assert not any(isinstance(e, Heal) for e in settle.effects)


def test_outside_the_scope_is_neither_healed_nor_announced() -> None:
    scheduler = HealScheduler(POLICY)
    only_db1 = Scope(frozenset({"db1"}))
    for now in (T0, T0 + 1.0):
        assert step(Stage.CHECK, host(), scheduler, now, scope=only_db1) == HealStep((Arm("heal", None),), None)


def test_a_heal_counts_and_the_next_one_backs_off() -> None:
    scheduler = HealScheduler(POLICY)
    table = host()
    web1 = table.bindings[("uuid-web1", "52:54:00:00:00:00")]
    step(Stage.CHECK, table, scheduler, T0, scope=web1_only())
    result = HealResult(web1, "ok", ("ip link set vnet0 master br0",))
    [line] = healed(scheduler, [result], T0 + 0.3)
    assert isinstance(line, Emit)
    assert (line.doc["event"], line.doc["target"], line.doc["result"]) == ("heal", "vnet0", "ok")
    assert line.doc["commands"] == ["ip link set vnet0 master br0"]
    # Broken again right away (another tool?): the 2nd heal waits for grace and back-off.
    assert step(Stage.CHECK, host(), scheduler, T0 + 0.4, scope=web1_only()).effects == (Arm("heal", T0 + 1.3),)


def test_nothing_to_do_is_said_once_by_the_heal_line_and_not_retried() -> None:
    scheduler = HealScheduler(POLICY)
    web1 = host().bindings[("uuid-web1", "52:54:00:00:00:00")]
    healed(scheduler, [HealResult(web1, "nothing", (), "no heal action applies")], T0)
    assert step(Stage.CHECK, host(), scheduler, T0 + 10, scope=web1_only()) == HealStep((Arm("heal", None),), None)


def test_a_link_set_down_in_libvirt_is_announced_once_and_never_healed() -> None:
    scheduler = HealScheduler(POLICY)
    first = step(Stage.CHECK, host(link_state="down"), scheduler, T0, scope=web1_only())
    [notice, arm] = first.effects
    assert isinstance(notice, Emit) and notice.doc["event"] == "heal-skipped" and "link state" in notice.doc["reason"]
    assert arm == Arm("heal", None) and first.then is None
    assert step(Stage.CHECK, host(link_state="down"), scheduler, T0 + 1, scope=web1_only()).effects == (
        Arm("heal", None),
    )
