"""Link and post-processing configuration as frozen dataclasses, with named presets.

Layer: sans-I/O configuration. Units live in the field names. Presets follow
``shared/REFERENCE.md`` section 1; values not given there are marked *assumed*.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ParameterError


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be positive, got {value}")


def _check_non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ParameterError(f"{name} must be non-negative, got {value}")


def _check_probability(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ParameterError(f"{name} must be a probability in [0, 1], got {value}")



@dataclass(frozen=True)
class LinkParams:
    """Physical link: a decoy-state weak-coherent-pulse BB84 transmitter, fibre and receiver."""

    pulse_rate_hz: float = 1e9
    mu_signal: float = 0.5
    mu_decoy: float = 0.1
    mu_vacuum: float = 0.0
    p_signal: float = 0.6
    p_decoy: float = 0.3
    p_vacuum: float = 0.1
    p_z_alice: float = 0.9
    p_z_bob: float = 0.9
    length_km: float = 50.0
    attenuation_db_per_km: float = 0.2
    extra_loss_db: float = 0.0
    detector_efficiency: float = 0.20
    """Bob's internal transmittance times detection efficiency (eta_bob)."""
    background_yield: float = 1e-6
    """Y0: probability per gate that dark counts or stray light give a click (both detectors)."""
    misalignment_error: float = 0.01
    ec_inefficiency: float = 1.16
    """f used by the *analytic* rate only; the engine measures its own leak."""

    def __post_init__(self) -> None:
        _check_positive("pulse_rate_hz", self.pulse_rate_hz)
        for name in ("length_km", "attenuation_db_per_km", "extra_loss_db", "mu_vacuum"):
            _check_non_negative(name, getattr(self, name))
        for name in ("p_signal", "p_decoy", "p_vacuum", "p_z_alice", "p_z_bob",
                     "detector_efficiency", "background_yield"):
            _check_probability(name, getattr(self, name))
        if not 0.0 <= self.misalignment_error <= 0.5:
            raise ParameterError(f"misalignment_error must be in [0, 0.5], got {self.misalignment_error}")
        if abs(self.p_signal + self.p_decoy + self.p_vacuum - 1.0) > 1e-9:
            raise ParameterError("p_signal + p_decoy + p_vacuum must equal 1")
        if not (self.mu_signal > self.mu_decoy + self.mu_vacuum and self.mu_decoy > self.mu_vacuum):
            raise ParameterError("intensities must satisfy mu_signal > mu_decoy + mu_vacuum and "
                                 "mu_decoy > mu_vacuum (Lim et al. 2014 decoy conditions)")
        if self.ec_inefficiency < 1.0:
            raise ParameterError("ec_inefficiency must be >= 1 (Shannon limit)")

    @property
    def intensities(self) -> tuple[float, float, float]:
        return (self.mu_signal, self.mu_decoy, self.mu_vacuum)

    @property
    def intensity_probabilities(self) -> tuple[float, float, float]:
        return (self.p_signal, self.p_decoy, self.p_vacuum)

    @property
    def channel_transmittance(self) -> float:
        """Fibre plus extra loss, without Bob's receiver."""
        loss_db = self.attenuation_db_per_km * self.length_km + self.extra_loss_db
        return 10.0 ** (-loss_db / 10.0)

    @property
    def total_transmittance(self) -> float:
        """eta = eta_bob * 10^(-(alpha L + extra)/10)."""
        return self.detector_efficiency * self.channel_transmittance

    @property
    def dark_count_probability(self) -> float:
        """Per detector and gate; two independent detectors give Y0 = 1 - (1 - pd)^2."""
        return 1.0 - math.sqrt(1.0 - self.background_yield)

    def with_changes(self, **changes: Any) -> LinkParams:
        return dataclasses.replace(self, **changes)


RECONCILERS = ("cascade", "ldpc")
MAX_EPSILON = 1e-3
MAX_BLOCK_DETECTIONS = 100_000_000  # a block's arrays must fit in memory
MAX_BLOCKS_IN_FLIGHT = 16  # per link; each holds a block's arrays


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ProcessingParams:
    """Post-processing and security settings for one block."""

    epsilon_sec: float = 1e-10
    epsilon_cor: float = 1e-15
    qber_abort_threshold: float = 0.11
    block_detections: int = 4_000_000
    """Detection events per post-processing block (sets the finite-size block)."""
    cascade_passes: int = 3
    """The fewest Cascade passes; ``cascade.plan`` adds passes while it expects residual errors."""
    reconciler: str = "cascade"
    """``cascade`` (interactive, about 1,000 round trips per 3 Mbit block) or ``ldpc`` (one-way:
    syndromes, then a round trip per retry of the frames that failed)."""
    auth_tag_bits: int = 128
    blocks_in_flight: int = 1
    """Blocks of one link a node processes at once in real time (their kernels run in threads, so
    a link uses up to this many cores); memory grows by one block's working set for each. One by
    default: nodes usually share a host's cores with other nodes, whose links keep them busy.
    Virtual time runs one block at a time."""

    def __post_init__(self) -> None:
        for name in ("epsilon_sec", "epsilon_cor"):
            value = getattr(self, name)
            # A security parameter above 1e-3 promises almost nothing (1e-10 is usual).
            if not (isinstance(value, (int, float)) and 0.0 < value <= MAX_EPSILON):
                raise ParameterError(f"{name} must be in (0, {MAX_EPSILON:g}], got {value!r}")
        if not 0.0 < self.qber_abort_threshold < 0.5:
            raise ParameterError("qber_abort_threshold must be in (0, 0.5)")
        if not _whole(self.block_detections) or not 1000 <= self.block_detections <= MAX_BLOCK_DETECTIONS:
            raise ParameterError(f"block_detections must be a whole number from 1000 to {MAX_BLOCK_DETECTIONS}")
        if not _whole(self.cascade_passes) or not 1 <= self.cascade_passes <= 16:
            raise ParameterError("cascade_passes must be a whole number in [1, 16]")
        if not _whole(self.blocks_in_flight) or not 1 <= self.blocks_in_flight <= MAX_BLOCKS_IN_FLIGHT:
            raise ParameterError(f"blocks_in_flight must be a whole number from 1 to {MAX_BLOCKS_IN_FLIGHT}")
        if self.reconciler not in RECONCILERS:
            raise ParameterError(f"reconciler must be one of {', '.join(RECONCILERS)}, got {self.reconciler!r}")


# Gobby, Yuan, Shields, APL 84, 3762 (2004), as tabulated by Lo, Ma, Chen, PRL 94, 230504 (2005).
# Intensities, their probabilities, basis bias and pulse rate are assumed (LMC-style vacuum + weak
# decoy, symmetric BB84).
GYS2004 = LinkParams(
    pulse_rate_hz=2e6,  # assumed
    mu_signal=0.48, mu_decoy=0.05, mu_vacuum=0.0,  # assumed (LMC optimum near mu = 0.48)
    p_signal=0.7, p_decoy=0.2, p_vacuum=0.1,  # assumed
    p_z_alice=0.5, p_z_bob=0.5,
    length_km=50.0, attenuation_db_per_km=0.21, extra_loss_db=0.0,
    detector_efficiency=0.045, background_yield=1.7e-6, misalignment_error=0.033,
    ec_inefficiency=1.22,
)

# Standard modern link of REFERENCE.md; intensity probabilities are assumed, chosen for the
# highest expected finite-key rate at 4e6 detections per block with pZ = 0.9.
STANDARD = LinkParams()

PRESETS: dict[str, LinkParams] = {"gys2004": GYS2004, "standard": STANDARD}


def preset(name: str) -> LinkParams:
    try:
        return PRESETS[name]
    except KeyError:
        raise ParameterError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None


def link_params_from_mapping(data: Mapping[str, Any], base: LinkParams = STANDARD) -> LinkParams:
    """Build parameters from a mapping (a parameter file or topology edge), checking names and types."""
    known = {f.name: f for f in dataclasses.fields(LinkParams)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key == "preset":
            continue
        if key not in known:
            raise ParameterError(f"unknown link parameter {key!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"link parameter {key!r} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ParameterError(f"link parameter {key!r} must be finite")
        changes[key] = float(value)
    if "preset" in data:
        base = preset(str(data["preset"]))
    return dataclasses.replace(base, **changes)


__all__ = ["LinkParams", "ProcessingParams", "PRESETS", "GYS2004", "STANDARD", "preset",
           "link_params_from_mapping"]
