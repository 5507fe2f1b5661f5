"""Packed copies: equal objects pack equal (whatever their key order) and unpack unchanged."""

from __future__ import annotations

from kubellm_operator.controller.packed import pack, unpack


def test_equal_objects_pack_equal_whatever_the_key_order() -> None:
    a = {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}], "replicas": 1}
    b = {"replicas": 1, "conditions": [{"status": "True", "type": "Ready"}], "phase": "Ready"}
    assert pack(a) == pack(b)
    assert pack(a) != pack({**a, "replicas": 2})
    assert unpack(pack(a)) == a


def test_a_status_packs_to_a_fraction_of_its_json() -> None:
    status = {
        "conditions": [
            {"type": t, "status": "False", "reason": "ClusterStarting", "message": "m" * 80}
            for t in ("Ready", "Reconciling", "Stalled", "RayClusterReady", "ServeReady")
        ]
    }
    assert len(pack(status)) < len(str(status)) / 2
