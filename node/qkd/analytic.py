"""Closed-form link model: gains, error rates, n-photon yields, asymptotic key rate, PLOB bound.

Layer: sans-I/O physics. These are the formulas the sampled channel must reproduce
(Lo, Ma, Chen, PRL 94, 230504 (2005); Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005)). Two detectors
with independent dark-count probability pd give Y0 = 1 - (1 - pd)^2; a double click is
assigned a random bit (squashing). ``gain`` and ``error_gain`` are exact for that detector
model and reduce to the textbook Q = Y0 + 1 - exp(-eta mu), EQ = e0 Y0 + e_d (1 - exp(-eta mu))
when eta*mu and Y0 are small.
"""

from __future__ import annotations

import math

import numpy as np

from .params import LinkParams


def binary_entropy(p: float | np.ndarray) -> float | np.ndarray:
    p_arr = np.clip(np.asarray(p, dtype=float), 1e-300, 1 - 1e-16)
    h = -p_arr * np.log2(p_arr) - (1 - p_arr) * np.log2(1 - p_arr)
    h = np.where((np.asarray(p) <= 0) | (np.asarray(p) >= 1), 0.0, h)
    return float(h) if np.ndim(h) == 0 else h


def gain(params: LinkParams, mu: float) -> float:
    """Probability that a pulse of mean photon number mu gives at least one click."""
    return 1.0 - (1.0 - params.background_yield) * math.exp(-params.total_transmittance * mu)


def error_gain(params: LinkParams, mu: float) -> float:
    """E_mu * Q_mu for matching bases: only the wrong detector clicks, or a double click (half)."""
    eta, pd, ed = params.total_transmittance, params.dark_count_probability, params.misalignment_error
    right = 1.0 - (1.0 - pd) * math.exp(-eta * mu * (1.0 - ed))
    wrong = 1.0 - (1.0 - pd) * math.exp(-eta * mu * ed)
    return wrong * (1.0 - right) + 0.5 * right * wrong


def qber(params: LinkParams, mu: float) -> float:
    return error_gain(params, mu) / gain(params, mu)


def textbook_gain(params: LinkParams, mu: float) -> float:
    return params.background_yield + 1.0 - math.exp(-params.total_transmittance * mu)


def textbook_error_gain(params: LinkParams, mu: float) -> float:
    return 0.5 * params.background_yield + params.misalignment_error * (
        1.0 - math.exp(-params.total_transmittance * mu))


def n_photon_yield(params: LinkParams, n: int) -> float:
    return 1.0 - (1.0 - params.background_yield) * (1.0 - params.total_transmittance) ** n


def n_photon_error(params: LinkParams, n: int) -> float:
    """Bit error rate of n-photon pulses with matching bases (squashed double clicks)."""
    eta, pd, ed = params.total_transmittance, params.dark_count_probability, params.misalignment_error
    z = (1 - pd) ** 2 * (1 - eta) ** n
    right_silent = (1 - pd) * (1 - eta * (1 - ed)) ** n
    wrong_silent = (1 - pd) * (1 - eta * ed) ** n
    only_wrong = right_silent - z
    both = 1 - right_silent - wrong_silent + z
    return (only_wrong + 0.5 * both) / (1 - z)


def photon_number_probability(params: LinkParams, n: int) -> float:
    """tau_n: probability that Alice emits n photons, averaged over her intensity choice."""
    return sum(p * math.exp(-mu) * mu ** n / math.factorial(n)
               for mu, p in zip(params.intensities, params.intensity_probabilities, strict=False))


def asymptotic_rate_per_pulse(params: LinkParams) -> float:
    """Expected secret bits per pulse for the protocol the engine runs, infinite block.

    Key from Z-basis detections of every intensity (efficient BB84, sifting q = pZa * pZb),
    phase error of single photons from the X basis: R = q [tau0 Y0 + tau1 Y1 (1 - h(e1))
    - f Q h(E)], with Q and E averaged over intensities. For q = 1/2 and signal-only key this
    is the GLLP decoy formula of Lo-Ma-Chen.
    """
    q = params.p_z_alice * params.p_z_bob
    tau0 = photon_number_probability(params, 0)
    tau1 = photon_number_probability(params, 1)
    y0 = n_photon_yield(params, 0)
    y1 = n_photon_yield(params, 1)
    e1 = n_photon_error(params, 1)
    probs = params.intensity_probabilities
    q_total = sum(p * gain(params, mu) for mu, p in zip(params.intensities, probs, strict=False))
    eq_total = sum(p * error_gain(params, mu) for mu, p in zip(params.intensities, probs, strict=False))
    e_total = eq_total / q_total
    rate = q * (tau0 * y0 + tau1 * y1 * (1.0 - binary_entropy(e1))
                - params.ec_inefficiency * q_total * binary_entropy(e_total))
    return max(float(rate), 0.0)


def plob_bound_per_pulse(params: LinkParams) -> float:
    """-log2(1 - eta) for the channel's transmissivity (Pirandola et al. 2017).

    Bob's detector efficiency is counted in eta, as REFERENCE.md defines it; this is the
    tighter of the two choices and still no emulated rate may exceed it.
    """
    return -math.log2(1.0 - params.total_transmittance)
