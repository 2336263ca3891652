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
    #: per N: bias, coverage, expected N / events / months, per-arm and randomized-only power
    #: (:func:`analysis.power_summary.operating_row`); ``None`` for results built before it existed
    operating: pd.DataFrame | None = field(default=None, repr=False)
    #: per N (group-sequential designs): boundaries and simulated stopping probabilities per look
    looks: list | None = field(default=None, repr=False)
    #: per N: closed-form power with inputs from the estimand's large trial (NaN where none applies)
    analytic_power: np.ndarray | None = field(default=None, repr=False)
    #: ``(K, R)`` per-replicate decisions (a group-sequential trial's rejection is not ``p < alpha``)
    rejected: np.ndarray | None = field(default=None, repr=False)
    rejected_null: np.ndarray | None = field(default=None, repr=False)
    #: one row per simulated trial (:func:`analysis.power_raw.replicate_frame`), for audit
    raw: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def n_total(self) -> tuple[int, ...]:
        return self.settings.n_total

    def type1_by_n_ci(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact (Clopper-Pearson) 95 % Monte Carlo interval of the type I error at each N."""
        from analysis.power import rate_ci
        reps = self.settings.replicates
        return rate_ci(np.rint(np.asarray(self.type1_by_n, dtype=float) * reps), reps)

    def table(self) -> pd.DataFrame:
        """One row per total N: power with its MC interval, the analytic cross-check, type I error, mean
        estimate, and the operating characteristics (bias, coverage, expected N / events / months, ...)."""
        out = pd.DataFrame({
            "n_total": list(self.n_total),
            "power": self.power, "power_ci_low": self.power_ci_low, "power_ci_high": self.power_ci_high,
            "type1_error": self.type1_by_n,
            "mean_estimate": np.nanmean(self.estimates, axis=1),
            "replicates": self.settings.replicates,
        })
        if self.analytic_power is not None:
            out.insert(4, "analytic_power", self.analytic_power)
        if self.operating is not None:
            out = pd.concat([out, self.operating.reset_index(drop=True)], axis=1)
        return out

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
            **self._json_extras(),
        }

    def _json_extras(self) -> dict:
        """The keys added after the skeleton: design conduct, operating characteristics, looks."""
        def clean(v):
            if isinstance(v, (float, np.floating)):
                return None if not np.isfinite(v) else float(v)
            if isinstance(v, (np.integer,)):
                return int(v)
            return v
        d = self.design
        out: dict = {"arms": [{"name": a.name, "allocation": a.allocation,
                               **({"effect": {a.effect.kind: a.effect.value, **a.effect.modifiers}}
                                  if a.effect is not None else {})} for a in d.arms]}
        if d.n_treatments > 1:
            out["multiplicity"] = d.multiplicity
        if self.analytic_power is not None:
            out["analytic_power"] = [clean(x) for x in self.analytic_power]
        if self.operating is not None:
            out["operating"] = {c: [clean(x) for x in self.operating[c]] for c in self.operating.columns}
        if self.looks is not None:
            out["looks"] = [{c: [clean(x) for x in t[c]] for c in t.columns} for t in self.looks]
        return out
