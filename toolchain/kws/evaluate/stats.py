"""Exact confidence intervals for miss rates (binomial) and false-accept rates (Poisson).

Both intervals are the classical "exact" ones: each tail holds at most (1 - confidence) / 2, so the
coverage is at least `confidence` for every true value (they are conservative, never optimistic).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as _sps

from kws.errors import KwsError


def _count(value: object, what: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 0:
        raise KwsError(f"{what}: {value!r} is not a non-negative integer count")
    return int(value)


def _alpha(confidence: float) -> float:
    if not (isinstance(confidence, (int, float, np.floating)) and 0.0 < float(confidence) < 1.0):
        raise KwsError(f"confidence: {confidence!r} is not a number strictly between 0 and 1")
    return 1.0 - float(confidence)


def binomial_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval for a proportion from k successes in n trials.

    Returns (lo, hi) floats in [0, 1]: lo = 0 when k == 0, hi = 1 when k == n, and (0, 1) when n == 0
    (no trials say nothing).
    """
    k, n = _count(k, "k"), _count(n, "n")
    if k > n:
        raise KwsError(f"k: {k} successes exceed n = {n} trials")
    alpha = _alpha(confidence)
    if n == 0:
        return (0.0, 1.0)
    lo = 0.0 if k == 0 else float(_sps.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(_sps.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return (lo, hi)


def poisson_rate_ci(k: int, exposure_hours: float, confidence: float = 0.95) -> tuple[float, float]:
    """Garwood interval for an event rate per hour from k events in `exposure_hours`.

    Returns (lo, hi) floats in events per hour; lo = 0 when k == 0. exposure_hours must be > 0.
    """
    k = _count(k, "k")
    if not (isinstance(exposure_hours, (int, float, np.integer, np.floating))
            and not isinstance(exposure_hours, bool)
            and math.isfinite(float(exposure_hours)) and float(exposure_hours) > 0):
        raise KwsError(f"exposure_hours: {exposure_hours!r} is not a finite number > 0")
    alpha = _alpha(confidence)
    hours = float(exposure_hours)
    lo = 0.0 if k == 0 else float(_sps.chi2.ppf(alpha / 2, 2 * k)) / 2
    hi = float(_sps.chi2.ppf(1 - alpha / 2, 2 * k + 2)) / 2
    return (lo / hours, hi / hours)
