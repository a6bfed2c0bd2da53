"""Key delivery to SAEs: routed like the orchestrator's relays, re-routed after a failed hop,
delivered once at the slave's KME; bad requests are one-line errors of the right kind."""

import pytest

from qkdnet.node.errors import InvalidRequest, KeyNotAvailable, PermissionDenied, Unavailable
from qkdnet.node.key_service import KeyService
from qkdnet.node.routing import LinkState, LiveState, RoutePlanner, make_strategy
from qkdnet.node.settings import KmeSettings
from tests.node.relay.wiring import Line

SAES = {"sae-a": "A", "sae-a2": "A", "sae-c": "C"}
KME = KmeSettings()
FIBRE_KM = {("A", "B"): 1.0, ("B", "C"): 1.0, ("A", "D"): 5.0, ("D", "C"): 5.0}


async def _diamond(tmp_path):
    """A-B-C (short fibre) and A-D-C (long): shortest_fibre routes over B first."""
    line = Line(tmp_path)
    for name in "ABCD":
        line.node(name)
    await line.wire(list(FIBRE_KM))
    live = LiveState([LinkState(u, v, km, 10**7) for (u, v), km in FIBRE_KM.items()], "ABCD")
    planner = RoutePlanner(make_strategy("shortest_fibre"), live, need_key=False)

    def service(name):
        return KeyService(name, KME, SAES, line.stores[name].keys, line.engines[name], line.links[name],
                          lambda: planner)
    return line, planner, service


async def test_keys_reach_the_slave_kme_once_over_the_planned_route(tmp_path):
    line, _, service = await _diamond(tmp_path)
    try:
        keys = await service("A").request_keys("sae-a", "sae-c", 3, 256)
        assert len(keys) == 3 and all(len(material) == 32 for _, material in keys)
        assert line.engines["B"].relays_forwarded == 3 and line.engines["D"].relays_forwarded == 0
        ids = [key_id for key_id, _ in keys]
        with pytest.raises(PermissionDenied):
            await service("C").fetch_keys("sae-a", "sae-a2", ids)  # not the slave named at enc_keys
        with pytest.raises(PermissionDenied):
            await service("A").fetch_keys("sae-a", "sae-c", ids)  # the master, at its own KME
        assert await service("C").fetch_keys("sae-a", "sae-c", ids) == keys
        with pytest.raises(KeyNotAvailable):
            await service("C").fetch_keys("sae-a", "sae-c", ids[:1])  # once only
        # The master's KME keeps no copy: the key went to the master SAE.
        assert {r.state for r in await line.stores["A"].keys.records()} == {"destroyed"}
    finally:
        await line.close()


async def test_a_failed_hop_the_kme_did_not_know_of_is_routed_around(tmp_path):
    line, planner, service = await _diamond(tmp_path)
    try:
        line.links["B"].cut.add("C")  # B-C is cut; A's view (the planner's live state) still has it up
        keys = await service("A").request_keys("sae-a", "sae-c", 2, 256)
        assert line.engines["D"].relays_forwarded == 2  # the retry went A-D-C with fresh keys
        assert await service("C").fetch_keys("sae-a", "sae-c", [k for k, _ in keys]) == keys
        assert not planner.live.links[frozenset(("B", "C"))].up  # until the next published view
        assert line.pool("A", "B").discarded_bits == 2 * 256  # the failed attempt's pads, accounted
    finally:
        await line.close()


async def test_no_route_is_unavailable_and_bad_requests_are_invalid(tmp_path):
    line, planner, service = await _diamond(tmp_path)
    try:
        with pytest.raises(InvalidRequest, match="unknown SAE"):
            await service("A").request_keys("sae-a", "sae-nobody", 1, 256)
        for u, v in (("A", "B"), ("A", "D")):
            planner.live.mark_down(u, v)
        with pytest.raises(Unavailable, match="no usable route to KME C"):
            await service("A").request_keys("sae-a", "sae-c", 1, 256)
        assert service("A").status("sae-a", "sae-c").stored_key_count == 0
        local = await service("A").request_keys("sae-a", "sae-a2", 2, 128)  # both SAEs at A: no relay
        assert await service("A").fetch_keys("sae-a", "sae-a2", [k for k, _ in local]) == local
    finally:
        await line.close()


async def test_status_counts_keys_the_first_hop_can_pad(tmp_path):
    line, _, service = await _diamond(tmp_path)
    try:
        status = service("A").status("sae-a", "sae-c")
        assert (status.source_kme, status.target_kme) == ("A", "C")
        assert status.stored_key_count == line.pool("A", "B").sendable_bits // KME.default_key_size
        assert service("A").status("sae-a", "sae-a2").stored_key_count == KME.max_key_per_request
    finally:
        await line.close()
