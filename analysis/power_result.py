"""The result of a simulated power analysis (frozen; summaries as methods)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trials.design import PowerSettings, TrialDesign

__all__ = ["PowerResult"]


@dataclass(frozen=True, eq=False)
class PowerResult:
    """Simulated power per total sample size, and the simulated type I error of the same design with no effect.

    * ``power``, ``power_ci_low``, ``power_ci_high``: shape ``(K,)`` for the K sizes in ``settings.n_total``;
      the interval is the exact (Clopper-Pearson) 95 % Monte Carlo interval of the rejection rate.
    * ``type1_by_n``: rejection rate under the null design at each size; ``type1_error`` pools all null
      replicates (``K * replicates``), with its Clopper-Pearson 95 % interval.
    * ``p_values`` / ``p_values_null``: ``(K, R)`` raw per-replicate p-values; ``estimates`` / ``estimates_null``
      the per-replicate estimates, for audit.
    """

    design: TrialDesign
    settings: PowerSettings
    analysis: str
    power: np.ndarray
    power_ci_low: np.ndarray
    power_ci_high: np.ndarray
    type1_by_n: np.ndarray
    type1_error: float
    type1_ci_low: float
    type1_ci_high: float
    p_values: np.ndarray = field(repr=False)
    p_values_null: np.ndarray = field(repr=False)
    estimates: np.ndarray = field(repr=False)
    estimates_null: np.ndarray = field(repr=False)
    seed: int | None = None
    elapsed_s: float = 0.0

    @property
    def n_total(self) -> tuple[int, ...]:
        return self.settings.n_total

    def type1_by_n_ci(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact (Clopper-Pearson) 95 % Monte Carlo interval of the type I error at each N."""
        from statsmodels.stats.proportion import proportion_confint
        reps = self.settings.replicates
        k = np.rint(np.asarray(self.type1_by_n, dtype=float) * reps)
        lo, hi = proportion_confint(k, reps, alpha=0.05, method="beta")
        return np.nan_to_num(np.asarray(lo, float), nan=0.0), np.nan_to_num(np.asarray(hi, float), nan=1.0)

    def table(self) -> pd.DataFrame:
        """One row per total N: power with its MC interval, type I error, mean estimate."""
        return pd.DataFrame({
            "n_total": list(self.n_total),
            "power": self.power, "power_ci_low": self.power_ci_low, "power_ci_high": self.power_ci_high,
            "type1_error": self.type1_by_n,
            "mean_estimate": np.nanmean(self.estimates, axis=1),
            "replicates": self.settings.replicates,
        })

    def to_json_dict(self) -> dict:
        """The CLI's JSON object (keys kept stable for scripts)."""
        return {
            "analysis": self.analysis,
            "n_total": [int(n) for n in self.n_total],
            "power": [float(x) for x in self.power],
            "power_ci_low": [float(x) for x in self.power_ci_low],
            "power_ci_high": [float(x) for x in self.power_ci_high],
            "type1_error": float(self.type1_error),
            "type1_error_ci_low": float(self.type1_ci_low),
            "type1_error_ci_high": float(self.type1_ci_high),
            "type1_error_by_n": [float(x) for x in self.type1_by_n],
            "alpha": float(self.settings.alpha),
            "replicates": int(self.settings.replicates),
            "seed": self.seed,
            "effect": {self.design.effect.kind: self.design.effect.value, **self.design.effect.modifiers},
            "elapsed_s": round(float(self.elapsed_s), 3),
        }
