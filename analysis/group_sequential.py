"""Group-sequential designs: boundaries (from :mod:`analysis.gs_boundaries`) applied to batched Z statistics.

A trial with looks ``k = 1..K`` stops at the first look where ``Z_k >= c_k`` (efficacy; two-sided designs:
``|Z_k| >= c_k``) or, at an interim look of a design with futility, ``Z_k <= f_k`` (futility; non-binding, so
:func:`sequential_outcome` can ignore it with ``obey_futility=False``); a trial crossing neither stops at look K
without rejecting (reason ``"none"``). Z is oriented so that large values favour the treatment. A NaN Z (an
analysis undefined on that replicate's data) crosses nothing: the trial continues, and a NaN at the last look
does not reject.

:func:`operating_characteristics` summarises R replicates (simulated under one scenario): the Monte Carlo
probability of stopping at each look for efficacy / futility, the overall rejection rate with its exact
Clopper-Pearson interval (``statsmodels.stats.proportion.proportion_confint(method="beta")``), and the expected
sample size / number of events given those at each look (``sum_r n[r, stop_r] / R`` with its Monte Carlo
standard error). Everything works on any ``(R, K)`` array of Z statistics, so simulated trials of any endpoint can
feed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from cohorts.errors import InvalidDataError

from .gs_boundaries import (SPENDING_FUNCTIONS, Boundaries, GroupSequentialDesign, boundaries,
                            crossing_probabilities, spending)

__all__ = ["SPENDING_FUNCTIONS", "spending", "GroupSequentialDesign", "Boundaries", "boundaries",
           "crossing_probabilities", "SequentialOutcome", "sequential_outcome", "OperatingCharacteristics",
           "operating_characteristics"]

REASONS = ("efficacy", "futility", "none")


@dataclass(frozen=True, eq=False)
class SequentialOutcome:
    """Per replicate (arrays of shape ``(R,)``): ``stop_look`` (1-based look where the trial stopped),
    ``reason`` ("efficacy", "futility" or "none"), ``rejected`` (stopped for efficacy), ``stop_z`` (Z at that
    look; its sign gives the direction of a two-sided rejection)."""

    stop_look: np.ndarray
    reason: np.ndarray
    rejected: np.ndarray
    stop_z: np.ndarray

    def __len__(self) -> int:
        return len(self.stop_look)

    def to_frame(self) -> pd.DataFrame:
        """One row per replicate, for audit."""
        return pd.DataFrame({"replicate": np.arange(len(self)), "stop_look": self.stop_look,
                             "reason": self.reason, "rejected": self.rejected, "stop_z": self.stop_z})


def _z_matrix(z_by_look, n_looks: int) -> np.ndarray:
    z = np.asarray(z_by_look, dtype=float)
    if z.ndim == 1 and n_looks == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[1] != n_looks or z.shape[0] == 0:
        raise InvalidDataError(f"z_by_look has shape {z.shape}; it must be (replicates, {n_looks}): one column "
                               "per look of the design, one row per replicate")
    return z


def sequential_outcome(z_by_look: np.ndarray, bounds: Boundaries, *, obey_futility: bool = True) -> SequentialOutcome:
    """Apply ``bounds`` to ``z_by_look`` (``(R, K)``, one column per look); see the module docstring."""
    k_max = bounds.design.n_looks
    z = _z_matrix(z_by_look, k_max)
    with np.errstate(invalid="ignore"):
        stat = np.abs(z) if bounds.design.sided == 2 else z
        eff = stat >= bounds.efficacy[None, :]                       # NaN compares False
        fut = np.zeros_like(eff)
        if bounds.futility is not None and obey_futility:
            fut[:, :-1] = z[:, :-1] <= bounds.futility[None, :-1]
    stop = eff | fut
    stop[:, -1] = True
    idx = np.argmax(stop, axis=1)
    rows = np.arange(z.shape[0])
    rejected = eff[rows, idx]
    reason = np.where(rejected, "efficacy", np.where(fut[rows, idx], "futility", "none")).astype(object)
    return SequentialOutcome(idx + 1, reason, rejected, z[rows, idx])


def _expected(at_look, outcome: SequentialOutcome, n_looks: int, name: str) -> tuple[float, float]:
    a = np.asarray(at_look, dtype=float)
    r = len(outcome)
    if a.shape == (n_looks,):
        a = np.broadcast_to(a, (r, n_looks))
    if a.shape != (r, n_looks) or not np.isfinite(a).all():
        raise InvalidDataError(f"{name} has shape {a.shape}; give finite numbers, one per look ({n_looks},) or one "
                               f"per replicate and look ({r}, {n_looks})")
    v = a[np.arange(r), outcome.stop_look - 1]
    se = float(v.std(ddof=1) / np.sqrt(r)) if r > 1 else float("nan")
    return float(v.mean()), se


@dataclass(frozen=True, eq=False)
class OperatingCharacteristics:
    """Monte Carlo operating characteristics of one design under one scenario (``n_replicates`` trials).

    ``per_look``: one row per look with the proportion of replicates stopping there for efficacy, for futility,
    in all, and the cumulative stopping and rejection proportions. ``rejection_rate`` with its Clopper-Pearson
    ``rejection_ci`` at ``conf_level``; ``expected_n`` / ``expected_events`` (None when not given) with their
    Monte Carlo standard errors. ``outcome``: the per-replicate :class:`SequentialOutcome`.
    """

    bounds: Boundaries
    n_replicates: int
    per_look: pd.DataFrame
    rejection_rate: float
    rejection_ci: tuple[float, float]
    conf_level: float
    expected_n: float | None
    expected_n_se: float | None
    expected_events: float | None
    expected_events_se: float | None
    outcome: SequentialOutcome = field(repr=False)

    def summary(self) -> pd.DataFrame:
        """One row: replicates, rejection rate and interval, expected sample size / events."""
        return pd.DataFrame([{"replicates": self.n_replicates, "rejection_rate": self.rejection_rate,
                              "ci_low": self.rejection_ci[0], "ci_high": self.rejection_ci[1],
                              "expected_n": self.expected_n, "expected_n_se": self.expected_n_se,
                              "expected_events": self.expected_events,
                              "expected_events_se": self.expected_events_se}])


def operating_characteristics(z_by_look: np.ndarray, bounds: Boundaries, *, n_at_look=None, events_at_look=None,
                              conf_level: float = 0.95, obey_futility: bool = True) -> OperatingCharacteristics:
    """Summarise the sequential outcome of ``z_by_look`` (``(R, K)``) under ``bounds``.

    ``n_at_look`` / ``events_at_look``: patients / events at each look, ``(K,)`` or per replicate ``(R, K)``
    (event counts at calendar-time looks differ between replicates).
    """
    if not 0 < conf_level < 1:
        raise InvalidDataError(f"conf_level = {conf_level!r} must lie in (0, 1), e.g. 0.95")
    out = sequential_outcome(z_by_look, bounds, obey_futility=obey_futility)
    k_max, r = bounds.design.n_looks, len(out)
    looks = np.arange(1, k_max + 1)
    eff = np.array([(out.rejected & (out.stop_look == k)).sum() for k in looks]) / r
    fut = np.array([((out.reason == "futility") & (out.stop_look == k)).sum() for k in looks]) / r
    stop = np.array([(out.stop_look == k).sum() for k in looks]) / r
    per_look = pd.DataFrame({"look": looks, "information_fraction": bounds.information_fractions,
                             "efficacy": eff, "futility": fut, "stop": stop, "cumulative_stop": np.cumsum(stop),
                             "cumulative_efficacy": np.cumsum(eff)})
    n_rej = int(out.rejected.sum())
    lo, hi = proportion_confint(n_rej, r, alpha=1 - conf_level, method="beta")
    en = _expected(n_at_look, out, k_max, "n_at_look") if n_at_look is not None else (None, None)
    ee = _expected(events_at_look, out, k_max, "events_at_look") if events_at_look is not None else (None, None)
    return OperatingCharacteristics(bounds, r, per_look, n_rej / r, (float(lo), float(hi)), conf_level,
                                    en[0], en[1], ee[0], ee[1], out)
