"""Finite-key decoy-state parameter estimation and the secret key length.

Layer: sans-I/O kernel. Implements the three-intensity bounds of Lim, Curty, Walenta, Xu,
Zbinden, "Concise security bounds for practical decoy-state QKD", PRA 89, 022307 (2014), with
the key in the Z basis and the phase error bounded from the X basis (their X and Z swapped).
Intensities mu1 > mu2 + mu3, mu2 > mu3 >= 0 are signal, weak decoy and vacuum. Every count is
bounded with failure probability epsilon_sec / 21 -- by multiplicative Chernoff bounds instead
of the paper's Hoeffding term (a documented deviation: tighter for rare counts, same role in
the proof) -- and the key length is

    l = floor( s_Z0 + s_Z1 (1 - h(phi_Z)) - leak_EC - 6 log2(21/eps_sec) - log2(2/eps_cor) ),

which is epsilon_cor-correct and epsilon_sec-secret (total epsilon_cor + epsilon_sec).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .analytic import binary_entropy


@dataclass(frozen=True)
class BasisCounts:
    """Detections n_k and errors m_k per intensity in one basis, and pulses sent per intensity."""

    detections: tuple[int, int, int]
    errors: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class DecoyEstimate:
    s_z0: float  # lower bound on vacuum events in the key
    s_z1: float  # lower bound on single-photon events in the key
    s_x1: float  # lower bound on single-photon events in the test basis
    v_x1: float  # upper bound on single-photon errors in the test basis
    phase_error_z1: float  # upper bound on the single-photon phase error of the key
    qber_x: float  # observed error rate of the test basis


def _tau(intensities: tuple[float, ...], probabilities: tuple[float, ...], n: int) -> float:
    return sum(p * math.exp(-mu) * mu ** n / math.factorial(n) for mu, p in zip(intensities, probabilities, strict=False))


def chernoff_expectation_bounds(observed: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds on the expectation of a sum of independent Bernoulli trials.

    Inverts the multiplicative Chernoff bounds P(X >= (1+d)E) <= exp(-d^2 E / (2+d)) and
    P(X <= (1-d)E) <= exp(-d^2 E / 2), each failing with probability epsilon. Unlike Hoeffding's
    additive term sqrt(n/2 ln(1/eps)), the deviation scales with the count itself, which keeps
    rare events (vacuum and weak-decoy detections) informative (cf. Zhang et al., PRA 95,
    012333 (2017)).
    """
    x = np.asarray(observed, float)
    log_term = math.log(1.0 / epsilon)
    lower = np.maximum(0.0, x + log_term / 2.0 - np.sqrt(2.0 * x * log_term + log_term ** 2 / 4.0))
    upper = (np.sqrt(x + log_term / 2.0) + math.sqrt(log_term / 2.0)) ** 2
    return lower, upper


def _bounds(counts: np.ndarray, intensities: np.ndarray, probabilities: np.ndarray,
            epsilon_sec: float) -> tuple[np.ndarray, np.ndarray]:
    """n^-_k, n^+_k of Lim et al.: count bounds scaled by e^mu_k / p_k, each failing w.p. eps/21."""
    lower, upper = chernoff_expectation_bounds(counts, epsilon_sec / 21.0)
    scale = np.exp(intensities) / probabilities
    return scale * lower, scale * upper


def _vacuum_bound(n_minus: np.ndarray, n_plus: np.ndarray, mu: np.ndarray, tau0: float) -> float:
    mu1, mu2, mu3 = mu
    return max(0.0, tau0 * (mu2 * n_minus[2] - mu3 * n_plus[1]) / (mu2 - mu3))


def _single_photon_bound(n_minus: np.ndarray, n_plus: np.ndarray, mu: np.ndarray,
                         s0: float, tau0: float, tau1: float) -> float:
    mu1, mu2, mu3 = mu
    numerator = n_minus[1] - n_plus[2] - (mu2 ** 2 - mu3 ** 2) / mu1 ** 2 * (n_plus[0] - s0 / tau0)
    denominator = mu1 * (mu2 - mu3) - mu2 ** 2 + mu3 ** 2
    return max(0.0, tau1 * mu1 * numerator / denominator)


def _gamma(a: float, b: float, c: float, d: float) -> float:
    """Random-sampling correction between the phase errors of two bases (Lim et al. eq. for gamma)."""
    if c <= 0 or d <= 0 or b <= 0 or b >= 1:
        return 0.5 if (c <= 0 or d <= 0) else 0.0
    inner = (c + d) / (c * d * (1 - b) * b) * (21.0 ** 2) / (a ** 2)
    return math.sqrt((c + d) * (1 - b) * b / (c * d * math.log(2)) * math.log2(inner))


def estimate(z: BasisCounts, x: BasisCounts, intensities: tuple[float, float, float],
             probabilities: tuple[float, float, float], epsilon_sec: float) -> DecoyEstimate:
    """Decoy bounds from Alice's per-intensity counts in the key (Z) and test (X) bases."""
    mu = np.asarray(intensities, float)
    p = np.asarray(probabilities, float)
    tau0 = _tau(intensities, probabilities, 0)
    tau1 = _tau(intensities, probabilities, 1)
    nz = np.asarray(z.detections, float)
    nx = np.asarray(x.detections, float)
    mx = np.asarray(x.errors, float)
    nz_minus, nz_plus = _bounds(nz, mu, p, epsilon_sec)
    nx_minus, nx_plus = _bounds(nx, mu, p, epsilon_sec)
    mx_minus, mx_plus = _bounds(mx, mu, p, epsilon_sec)
    s_z0 = _vacuum_bound(nz_minus, nz_plus, mu, tau0)
    s_z1 = _single_photon_bound(nz_minus, nz_plus, mu, s_z0, tau0, tau1)
    s_x0 = _vacuum_bound(nx_minus, nx_plus, mu, tau0)
    s_x1 = _single_photon_bound(nx_minus, nx_plus, mu, s_x0, tau0, tau1)
    v_x1 = max(0.0, tau1 * (mx_plus[1] - mx_minus[2]) / (mu[1] - mu[2]))
    if s_x1 > 0:
        ratio = min(v_x1 / s_x1, 0.5)
        phase = min(0.5, ratio + _gamma(epsilon_sec, ratio, s_z1, s_x1))
    else:
        phase = 0.5
    qber_x = float(mx.sum() / nx.sum()) if nx.sum() > 0 else 0.5
    return DecoyEstimate(s_z0=s_z0, s_z1=s_z1, s_x1=s_x1, v_x1=v_x1, phase_error_z1=phase, qber_x=qber_x)


def secret_key_length(est: DecoyEstimate, leak_ec_bits: int, epsilon_sec: float, epsilon_cor: float) -> int:
    """Length of the privacy-amplified key; not positive means no key from this block."""
    value = (est.s_z0 + est.s_z1 * (1.0 - float(binary_entropy(est.phase_error_z1))) - leak_ec_bits
             - 6.0 * math.log2(21.0 / epsilon_sec) - math.log2(2.0 / epsilon_cor))
    return int(math.floor(value))
