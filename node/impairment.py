"""Faults a tester switches on on a live link's quantum channel: extra loss, misalignment, dark
counts, and an eavesdropper.

Layer: node domain (physics configuration, no I/O). The transmitter end owns the channel
physics, so an impairment is applied there, block by block: the next block's pulses go through
the changed channel; nothing about it is told to the receiver, which finds out as a real
receiver would, from the QBER and the decoy statistics. ``Impairment()`` is the healthy link.
"""

from __future__ import annotations

from dataclasses import dataclass

from qkdnet.node.errors import InvalidRequest
from qkdnet.node.qkd.attacks import Attack, InterceptResend, PhotonNumberSplitting
from qkdnet.node.qkd.params import LinkParams

MAX_EXTRA_LOSS_DB = 60.0  # beyond this no detection is left to speak of
MAX_DRIFT_PER_S = 0.1  # from aligned to useless (QBER 1/2) in five emulated seconds at most


@dataclass(frozen=True)
class Impairment:
    extra_loss_db: float = 0.0  # a splice, a bend, a bad connector: added to the fibre's loss
    misalignment_error: float = 0.0  # added to the link's own (polarisation or phase drift)
    dark_count_factor: float = 1.0  # background yield times this (a warm or failing detector)
    intercept_resend_fraction: float = 0.0  # of pulses measured and resent by Eve
    photon_number_splitting: bool = False  # Eve's PNS attack on multi-photon pulses
    misalignment_drift_per_s: float = 0.0  # misalignment added per emulated second since switched on

    def __post_init__(self) -> None:
        checks = ((0.0 <= self.extra_loss_db <= MAX_EXTRA_LOSS_DB, f"extra loss must be in [0, {MAX_EXTRA_LOSS_DB:g}] dB"),
                  (0.0 <= self.misalignment_error <= 0.5, "added misalignment must be in [0, 0.5]"),
                  (1.0 <= self.dark_count_factor <= 1e6, "the dark-count factor must be in [1, 1e6]"),
                  (0.0 <= self.intercept_resend_fraction <= 1.0, "the intercept-resend fraction must be in [0, 1]"),
                  (0.0 <= self.misalignment_drift_per_s <= MAX_DRIFT_PER_S,
                   f"the misalignment drift must be in [0, {MAX_DRIFT_PER_S:g}] per second"))
        for ok, message in checks:
            if not ok:  # also false for NaN
                raise InvalidRequest(message)
        if self.photon_number_splitting and self.intercept_resend_fraction:
            raise InvalidRequest("one eavesdropper at a time: intercept-resend or photon-number splitting")

    @property
    def healthy(self) -> bool:
        return self == Impairment()

    def physics(self, params: LinkParams, elapsed_s: float = 0.0) -> LinkParams:
        """The link's parameters as the impaired channel behaves ``elapsed_s`` emulated seconds
        after the impairment was switched on (a drift grows with it)."""
        if self.healthy:
            return params
        misalignment = self.misalignment_error + self.misalignment_drift_per_s * elapsed_s
        return params.with_changes(
            extra_loss_db=params.extra_loss_db + self.extra_loss_db,
            misalignment_error=min(0.5, params.misalignment_error + misalignment),
            background_yield=min(0.5, params.background_yield * self.dark_count_factor))

    @property
    def attack(self) -> Attack | None:
        if self.photon_number_splitting:
            return PhotonNumberSplitting()
        if self.intercept_resend_fraction > 0:
            return InterceptResend(self.intercept_resend_fraction)
        return None

    def describe(self) -> str:
        parts = [f"+{self.extra_loss_db:g} dB" if self.extra_loss_db else "",
                 f"+{self.misalignment_error:g} misalignment" if self.misalignment_error else "",
                 f"misalignment drifting +{self.misalignment_drift_per_s:g}/s" if self.misalignment_drift_per_s else "",
                 f"dark counts x{self.dark_count_factor:g}" if self.dark_count_factor != 1.0 else "",
                 f"intercept-resend {self.intercept_resend_fraction:.0%}" if self.intercept_resend_fraction else "",
                 "photon-number splitting" if self.photon_number_splitting else ""]
        return ", ".join(p for p in parts if p) or "healthy"
