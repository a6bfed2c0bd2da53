"""Eavesdropping attacks on the quantum channel, described as photon-number-resolved branches.

Layer: sans-I/O physics. An attack is a frozen dataclass. ``channel_branches`` turns the honest
channel or a photon-number-splitting (PNS) Eve into a table of branches: for an emitted n-photon
pulse, branch j happens with probability ``weight[j, n]`` and delivers ``photons[j, n]`` photons
to Bob's receiver, each surviving with ``transmittance[j]``. Intercept-resend keeps the photon
statistics and changes only the encoded state, so the sampler handles it after the branches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .params import LinkParams

MAX_PHOTONS = 24
"""Poisson tail above this is below 1e-20 for every mu <= 1.2 the engine accepts for attacks."""


@dataclass(frozen=True)
class InterceptResend:
    """Eve measures a fraction of pulses in a random basis and resends her result.

    Idealised Eve: a quantum non-demolition photon counter lets her skip empty pulses and resend
    the same photon number prepared in her basis and bit, so gains are unchanged and each
    intercepted pulse with matching Alice-Bob bases adds an error with probability 1/4.
    """

    fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ParameterError("intercept-resend fraction must be in [0, 1]")


@dataclass(frozen=True)
class PhotonNumberSplitting:
    """Eve replaces the fibre by a lossless line, blocks single photons, keeps one photon of every
    multi-photon pulse and forwards the rest, thinning forwarded pulses so that the *signal* gain
    Bob sees equals the honest one. Only the decoy analysis can notice (Brassard et al. 2000).
    """


Attack = InterceptResend | PhotonNumberSplitting


@dataclass(frozen=True)
class ChannelBranches:
    weight: np.ndarray  # (B, MAX_PHOTONS + 1) probability of branch j for n emitted photons
    photons: np.ndarray  # (B, MAX_PHOTONS + 1) photons reaching Bob's receiver
    transmittance: np.ndarray  # (B,) survival probability of each of those photons
    eve_holds_copy: np.ndarray  # (B, MAX_PHOTONS + 1) bool: Eve kept a photon of this pulse


def poisson_table(mu: float) -> np.ndarray:
    n = np.arange(MAX_PHOTONS + 1)
    log_fact = np.cumsum(np.log(np.maximum(n, 1)))
    with np.errstate(divide="ignore"):
        log_p = -mu + n * np.log(mu) - log_fact if mu > 0 else np.where(n == 0, 0.0, -np.inf)
    return np.exp(log_p)


def click_probability(params: LinkParams, photons: np.ndarray, transmittance: np.ndarray | np.floating) -> np.ndarray:
    """At least one of Bob's two detectors clicks, given photons at his receiver."""
    pd = params.dark_count_probability
    return 1.0 - (1.0 - pd) ** 2 * (1.0 - transmittance) ** photons


def channel_branches(params: LinkParams, attack: Attack | None) -> ChannelBranches:
    n = np.arange(MAX_PHOTONS + 1)
    honest = ChannelBranches(
        weight=np.ones((1, n.size)), photons=n[None, :].copy(),
        transmittance=np.array([params.total_transmittance]),
        eve_holds_copy=np.zeros((1, n.size), dtype=bool))
    if attack is None or isinstance(attack, InterceptResend):
        return honest
    if isinstance(attack, PhotonNumberSplitting):
        return _pns_branches(params, n)
    raise ParameterError(f"unknown attack {attack!r}")


def _pns_branches(params: LinkParams, n: np.ndarray) -> ChannelBranches:
    eta, eta_bob = params.total_transmittance, params.detector_efficiency
    poisson = poisson_table(params.mu_signal)
    honest_signal_clicks = float(poisson @ click_probability(params, n, np.float64(eta)))
    dark_only = float(click_probability(params, np.zeros(1), np.float64(0.0))[0])
    forwarded_multi = click_probability(params, np.maximum(n - 1, 0), np.float64(eta_bob))
    multi = n >= 2
    # Signal clicks if Eve forwards every multi-photon pulse and blocks every single photon:
    from_multi = float(poisson[multi] @ forwarded_multi[multi])
    from_rest = float(poisson[~multi].sum() * dark_only)
    single_honest = float(click_probability(params, np.ones(1), np.float64(eta))[0])
    if from_multi + from_rest >= honest_signal_clicks:
        f_multi = (honest_signal_clicks - from_rest) / (from_multi - poisson[multi].sum() * dark_only)
        f_single = 0.0
    else:  # too little multi-photon light: pass some single photons through the honest channel
        f_multi = 1.0
        needed = honest_signal_clicks - from_multi - from_rest
        f_single = min(1.0, needed / (poisson[1] * (single_honest - dark_only)))
    f_multi = float(np.clip(f_multi, 0.0, 1.0))
    weight = np.zeros((3, n.size))
    photons = np.zeros((3, n.size), dtype=np.int64)
    weight[0, multi] = f_multi  # split: n - 1 photons over a lossless line
    photons[0] = np.maximum(n - 1, 0)
    weight[1, 1] = f_single  # single photon left alone on the honest channel
    photons[1] = n
    weight[2] = 1.0 - weight[0] - weight[1]  # blocked: Bob sees only dark counts
    holds = np.zeros((3, n.size), dtype=bool)
    holds[0, multi] = True
    return ChannelBranches(weight=weight, photons=photons,
                           transmittance=np.array([eta_bob, eta, 0.0]), eve_holds_copy=holds)
