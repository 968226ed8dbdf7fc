"""The exporter's QoS families: bytes/s, one-hot verdicts over bounded labels, quiet vifs left out."""

from __future__ import annotations

from vifscope.exporter.qos import QOS_LABELS, qos_families
from vifscope.model.qos import BandwidthRate, DirectionQos, Enforced, QosVerdict, VifQos

V = QosVerdict


def vif(name: str, inbound: DirectionQos, outbound: DirectionQos, verdict: QosVerdict) -> VifQos:
    return VifQos(name, 0, "52:54:00:00:00:01", "vnet0", "bridge", inbound, outbound, verdict)


NONE = DirectionQos(None, None, V.NONE)


def test_rates_in_bytes_per_second_and_one_hot_verdicts() -> None:
    drift = DirectionQos(BandwidthRate(1000), Enforced("htb", 3000.0, 3000.0, 1.5), V.DRIFT, ("average",))
    fams = {f.name: f for f in qos_families([vif("web", drift, NONE, V.DRIFT), vif("idle", NONE, NONE, V.NONE)])}
    labels = ("web", "52:54:00:00:00:01", "vnet0", "inbound")
    assert fams["vifscope_vif_qos_declared_bytes_per_second"].rows == ((labels, 1_000_000.0),)
    assert fams["vifscope_vif_qos_enforced_bytes_per_second"].rows == ((labels, 3_000_000.0),)
    verdicts = fams["vifscope_vif_qos_verdict"]
    assert verdicts.labels == (*QOS_LABELS, "verdict")
    hot = [(row[0][3], row[0][4]) for row in verdicts.rows if row[1] == 1.0]
    assert hot == [("inbound", "drift"), ("outbound", "none")]  # "idle" (nothing anywhere) has no series
    assert len(verdicts.rows) == 2 * len(QosVerdict)
