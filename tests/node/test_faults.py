"""Faults on a live link, through a trusted node's seams with its neighbour in the same process:
an eavesdropper and other impairments of the quantum channel, and a cut repaired."""

import math

import pytest

from qkdnet.node import link_runtime
from qkdnet.node.errors import Conflict, InvalidRequest
from qkdnet.node.impairment import Impairment
from qkdnet.node.link_runtime import qber_backoff_s
from qkdnet.node.qkd.attacks import InterceptResend, PhotonNumberSplitting
from qkdnet.node.qkd.params import STANDARD
from tests.helpers import eventually
from tests.node.inprocess import close_all, configure_line, link_pair, nodes_in


@pytest.mark.parametrize("fields", [
    {"intercept_resend_fraction": 1.5}, {"intercept_resend_fraction": -0.1}, {"intercept_resend_fraction": math.nan},
    {"extra_loss_db": -1.0}, {"extra_loss_db": 100.0}, {"misalignment_error": 0.6}, {"dark_count_factor": 0.5},
    {"intercept_resend_fraction": 0.5, "photon_number_splitting": True}, {"misalignment_drift_per_s": 1.0},
])
def test_an_impossible_impairment_is_refused(fields):
    with pytest.raises(InvalidRequest):
        Impairment(**fields)


def test_an_impairment_changes_the_physics_the_transmitter_samples():
    assert Impairment().physics(STANDARD) is STANDARD and Impairment().attack is None
    bent = Impairment(extra_loss_db=3.0, misalignment_error=0.02, dark_count_factor=10.0).physics(STANDARD)
    assert math.isclose(bent.channel_transmittance, STANDARD.channel_transmittance / 10 ** 0.3)
    assert math.isclose(bent.misalignment_error, STANDARD.misalignment_error + 0.02)
    assert math.isclose(bent.background_yield, STANDARD.background_yield * 10)
    drifting = Impairment(misalignment_drift_per_s=0.01)
    assert drifting.physics(STANDARD, 0.0).misalignment_error == STANDARD.misalignment_error
    assert math.isclose(drifting.physics(STANDARD, 3.0).misalignment_error, STANDARD.misalignment_error + 0.03)
    assert drifting.physics(STANDARD, 1e6).misalignment_error == 0.5  # capped: a useless channel, not more
    assert Impairment(intercept_resend_fraction=0.3).attack == InterceptResend(0.3)
    assert isinstance(Impairment(photon_number_splitting=True).attack, PhotonNumberSplitting)


async def test_an_intercept_resend_eavesdropper_raises_qber_to_a_quarter_and_aborts_blocks(tmp_path):
    """Full intercept-resend: every matching-basis bit is wrong with probability 1/4, on top of the
    link's own ~1 % error. A block's test-basis estimate rests on tens of thousands of bits (its
    standard deviation is below 0.005), so [0.22, 0.30] holds by more than 6 sigma."""
    nodes = nodes_in(tmp_path, "AB")
    try:
        await configure_line(nodes)
        a = nodes["A"].links.by_peer("B").runtime
        await eventually(lambda: a.blocks_accepted >= 1, 120, "an honest block accepted")
        with pytest.raises(InvalidRequest, match="transmitter A owns the channel"):
            await nodes["B"].set_impairment("A", Impairment(intercept_resend_fraction=1.0))
        await nodes["A"].set_impairment("B", Impairment(intercept_resend_fraction=1.0))
        accepted = a.blocks_accepted
        await eventually(lambda: a.aborts_by_category.get("qber", 0) >= 1, 120, "a block aborted for its QBER")
        assert 0.22 <= a.last_qber <= 0.30
        assert all(0.2 <= q <= 0.32 for q in a.last_qber_per_intensity[:2])  # signal and decoy
        await nodes["A"].set_impairment("B", Impairment())  # Eve leaves: blocks are accepted again
        accepted = a.blocks_accepted
        # (Blocks already under way when she left still carry her errors, and may end later.)
        await eventually(lambda: a.blocks_accepted > accepted + 1 and a.last_qber < 0.05, 120,
                         "honest blocks accepted again")
    finally:
        await close_all(nodes)


async def test_a_repaired_cut_generates_key_again_on_the_kept_pools(tmp_path):
    nodes = nodes_in(tmp_path, "AB")
    try:
        await configure_line(nodes)
        a_end, b_end = nodes["A"].links.by_peer("B"), nodes["B"].links.by_peer("A")
        await eventually(lambda: a_end.pool.generated_bits > 0 and b_end.pool.generated_bits > 0, 120, "link key")
        await nodes["A"].set_impairment("B", Impairment(extra_loss_db=1.0))  # a fault that outlives the cut
        fresh_tx, fresh_rx = link_pair("A", "B")
        with pytest.raises(Conflict, match="no cut to restore"):
            await nodes["B"].restore_link(fresh_rx)
        await nodes["A"].set_link_down("B")
        await nodes["B"].set_link_down("A")
        before = a_end.pool.generated_bits
        await nodes["B"].restore_link(fresh_rx)  # the receiver first, as the controller does
        await nodes["A"].restore_link(fresh_tx)
        assert not a_end.cut and not b_end.cut and a_end.settings.bootstrap_secret == fresh_tx.bootstrap_secret
        assert a_end.runtime.impairment == Impairment(extra_loss_db=1.0)
        await eventually(lambda: a_end.pool.generated_bits > before and
                         a_end.pool.generated_bits == b_end.pool.generated_bits, 120, "new key at both ends")
        status = (await nodes["A"].status()).links[0]
        assert status.state != "cut" and status.balanced
    finally:
        await close_all(nodes)



def test_blocks_aborted_for_their_qber_are_spaced_out_up_to_half_a_minute():
    assert [qber_backoff_s(n) for n in range(7)] == [0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 4.0]
    assert qber_backoff_s(9) == qber_backoff_s(10_000) == 30.0


@pytest.mark.slow
async def test_a_long_attack_exhausts_authentication_key_and_a_re_key_brings_the_link_back(tmp_path, monkeypatch):
    """Every aborted block spends authentication key and refills none: after tens of them the
    receiver cannot authenticate a block; every refused frame counts as an ``authentication``
    abort (what QkdnetLinkAuthKeyExhausted watches) and the transmitter backs off instead of
    spinning. Eve leaving does not help; a cut and a restore with a fresh secret does. (The
    transmitter's backoff under a high QBER, which makes this take hours, is switched off here.)"""
    monkeypatch.setattr(link_runtime, "QBER_BACKOFF_AFTER", 10**9)
    nodes = nodes_in(tmp_path, "AB")
    try:
        await configure_line(nodes)
        a, b = (nodes[x].links.by_peer(y).runtime for x, y in (("A", "B"), ("B", "A")))
        await eventually(lambda: a.blocks_accepted >= 1, 120, "an honest block accepted")
        await nodes["A"].set_impairment("B", Impairment(intercept_resend_fraction=1.0))
        await eventually(lambda: b.aborts_by_category.get("authentication", 0) >= 3, 300, "authentication exhausted")
        await nodes["A"].set_impairment("B", Impairment())
        refused, accepted = b.aborts_by_category["authentication"], a.blocks_accepted
        await eventually(lambda: b.aborts_by_category["authentication"] > refused + 2, 60, "more refused blocks")
        assert a.blocks_accepted == accepted  # Eve has gone, yet nothing is accepted
        fresh_tx, fresh_rx = link_pair("A", "B")
        await nodes["A"].set_link_down("B")
        await nodes["B"].set_link_down("A")
        await nodes["B"].restore_link(fresh_rx)
        await nodes["A"].restore_link(fresh_tx)
        a = nodes["A"].links.by_peer("B").runtime
        await eventually(lambda: a.blocks_accepted >= 1, 120, "blocks accepted after the re-key")
    finally:
        await close_all(nodes)


async def test_a_fault_on_the_channel_outlives_a_restart_of_its_transmitter_until_cleared(tmp_path):
    nodes = nodes_in(tmp_path, "AB")
    try:
        await configure_line(nodes)
        await nodes["A"].set_impairment("B", Impairment(extra_loss_db=3.0, intercept_resend_fraction=0.5))
    finally:
        await close_all(nodes)
    nodes = nodes_in(tmp_path, "AB")  # both processes again, on their stores
    try:
        await configure_line(nodes)
        assert nodes["A"].links.by_peer("B").runtime.impairment == Impairment(extra_loss_db=3.0,
                                                                             intercept_resend_fraction=0.5)
        assert nodes["B"].links.by_peer("A").runtime.impairment.healthy  # the receiver never holds one
        await nodes["A"].set_impairment("B", Impairment())
    finally:
        await close_all(nodes)
    nodes = nodes_in(tmp_path, "AB")
    try:
        await configure_line(nodes)
        assert nodes["A"].links.by_peer("B").runtime.impairment.healthy
    finally:
        await close_all(nodes)
