"""Conditional sampling: eligibility criteria, enrichment and target marginals on top of any generator.

``generator.draw(n, rng=rng, conditions=SamplingConditions(...))`` (and ``sample``) land in
:func:`draw_conditionally`, which works for every family through the generator's unconditional ``_draw`` and
:meth:`~cohorts.generators.base.CohortGenerator.baseline_frame`:

1. **Pilot.** Draw ``pilot_draws`` (20,000) patients and evaluate the criteria (:mod:`cohorts.criteria`). If
   the eligible fraction is below ``min_acceptance``, fail, naming the pass rate of every top-level ``and``
   clause (most restrictive first) and text values that never occur (likely typos).
2. **Weights** (only with ``enrich`` or ``target_marginals``), estimated on the eligible pilot draws. Each
   ``enrich`` expression true for a patient multiplies the patient's weight by its factor (``{"site_of_onset ==
   'Bulbar'": 2.0}``: bulbar patients twice as likely to be enrolled as in the source). Target marginals
   multiply by ``exp(lambda . g(x))``: an indicator per category or bin (the weight is the ratio target /
   source probability), and ``x`` and ``x**2`` for a ``mean``/``sd`` target (a ratio of normal densities,
   ``exp(a x + b x**2)``). The ``lambda`` are calibrated jointly (entropy balancing, Hainmueller 2012, by
   Newton's method) so that the weighted pilot matches every target exactly; for a single categorical target
   this is exactly target / source, for a normal source and target it is the normal density ratio, and unlike
   a product of separate ratios it stays exact when the targeted covariates are correlated. Patients outside a
   target's support (category or bin with target 0, outside the bins, missing value) get weight 0.
3. **Acceptance-rejection.** An eligible draw is kept with probability ``weight / max weight`` (the maximum
   over the pilot; a later draw above it is kept with probability 1 and counted in ``weights_capped_fraction``).
   Chosen over sampling without replacement from a weighted pool because it yields independent patients drawn
   exactly from the reweighted distribution, never the same synthetic patient twice, at any ``n``, whereas a
   weighted draw without replacement from a finite pool flattens the weights as ``n`` approaches the pool size
   (high-weight patients run out) and one with replacement duplicates patients. Its cost,
   ``1 / weight_efficiency`` draws per eligible draw (``mean / max`` weight), is reported.
4. **Patients.** If the pilot holds ``n`` kept patients they are used; otherwise one fresh batch sized from the
   pilot's rates (``(n + 4 sqrt(n) + 10) / rate``, retried larger if short) is drawn and its first ``n`` kept
   patients returned: a ``PatientDraw``'s latent outcome cannot be concatenated across batches. ``max_draws``
   bounds the total (about 0.3 GB and 5 s per million ALS draws).

Everything random comes from ``rng``: the same seed gives the same patients. ``info`` holds
``acceptance_rate`` (eligible fraction of all draws), ``n_drawn``, ``n_eligible``, ``effective_sample_size``
(Kish ESS of the weights over the eligible pilot), ``weight_efficiency``, ``achieved_marginals`` (per target,
in the returned patients), ``enrichment`` (source and sampled fractions, achieved odds ratio) and
``clause_pass_rates``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from cohorts.criteria import Criteria, parse_criteria
from cohorts.errors import InvalidScenarioError

__all__ = ["SamplingConditions", "draw_conditionally", "MIN_EFFECTIVE_SAMPLE_SIZE"]

#: below this Kish ESS on the eligible pilot the targets are too far from the source to be trusted
MIN_EFFECTIVE_SAMPLE_SIZE = 50
_SOURCE = "sampling conditions"


def _fail(*problems: str):
    raise InvalidScenarioError(list(problems), source=_SOURCE)


@dataclass(frozen=True)
class SamplingConditions:
    """Who is drawn: eligibility ``criteria`` (an expression, see :mod:`cohorts.criteria`), ``enrich``
    (expression -> relative enrolment weight > 0) and ``target_marginals`` (column -> ``{category: prob}``,
    ``{"mean": m, "sd": s}`` or ``{"bins": [edges], "probs": [per bin]}``; bins are ``[a, b)``, the last one
    closed). Expressions are parsed (and checked for syntax) on construction."""

    criteria: str | None = None
    enrich: Mapping[str, float] | None = None
    target_marginals: Mapping[str, Mapping] | None = None
    min_acceptance: float = 0.001
    max_draws: int = 2_000_000
    pilot_draws: int = 20_000
    _parsed: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        problems, num = [], (int, float, np.integer, np.floating)
        if self.criteria is not None and not isinstance(self.criteria, str):
            problems.append(f"criteria must be an expression (text), got {type(self.criteria).__name__}")
        for key in ("enrich", "target_marginals"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, Mapping):
                problems.append(f"{key} must be a mapping, got {type(value).__name__}")
            object.__setattr__(self, key, dict(value) if isinstance(value, Mapping) else value)
        for expr, w in (self.enrich if isinstance(self.enrich, dict) else {}).items():
            if isinstance(w, bool) or not isinstance(w, num) or not math.isfinite(w) or w <= 0:
                problems.append(f"enrich[{expr!r}] = {w!r}: give a positive number (2 = twice as likely to be "
                                "enrolled as in the source; use the criteria to exclude patients)")
        for col, spec in (self.target_marginals if isinstance(self.target_marginals, dict) else {}).items():
            problems += [f"target_marginals[{col!r}]: {p}" for p in _spec_problems(spec)]
        if isinstance(self.min_acceptance, bool) or not isinstance(self.min_acceptance, num) \
                or not 0 < self.min_acceptance <= 1:
            problems.append(f"min_acceptance = {self.min_acceptance!r}: give a fraction in (0, 1], e.g. 0.001")
        for key, low in (("max_draws", 1), ("pilot_draws", 100)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                problems.append(f"{key} = {v!r}: give a whole number >= {low}")
        if problems:
            _fail(*problems)
        crit = parse_criteria(self.criteria) if self.criteria is not None else None
        enrich = tuple((_parse(e, f"enrich expression {e!r}"), float(w)) for e, w in (self.enrich or {}).items())
        object.__setattr__(self, "_parsed", (crit, enrich))

    @classmethod
    def from_dict(cls, data: Mapping) -> "SamplingConditions":
        """From a scenario table; unknown keys are an error naming the closest valid key."""
        names = [f.name for f in fields(cls) if f.init]
        bad = [(k, difflib.get_close_matches(str(k), names, 1)) for k in data if k not in names]
        if bad:
            _fail(*(f"unknown key {k!r}; " + (f"did you mean {close[0]!r}?" if close else
                                               f"valid keys: {', '.join(names)}") for k, close in bad))
        return cls(**data)

    def describe(self) -> str:
        """Plain-language summary for the report."""
        crit, enrich = self._parsed
        lines = [crit.describe() if crit else "No eligibility criteria: every drawn patient is eligible."]
        lines += [f"Enrichment: patients with {c} are {w:g} times as likely to be enrolled." for c, w in enrich]
        for col, spec in (self.target_marginals or {}).items():
            if "mean" in spec:
                lines.append(f"Target for {col}: mean {spec['mean']:g}, sd {spec['sd']:g}.")
            elif "bins" in spec:
                lines.append(f"Target for {col}: bins {list(spec['bins'])} with probabilities {list(spec['probs'])}.")
            else:
                lines.append(f"Target for {col}: " + ", ".join(f"{k} {v:.1%}" for k, v in spec.items()) + ".")
        return "\n".join(lines)


def _parse(text, source) -> Criteria:
    try:
        return parse_criteria(text)
    except InvalidScenarioError as e:  # name the enrichment expression instead of "eligibility criteria"
        e.source = source
        e.args = (e._render(),)
        raise


def _spec_problems(spec) -> list[str]:
    if not isinstance(spec, Mapping) or not spec:
        return ["give {category: probability}, {'mean': m, 'sd': s} or {'bins': [...], 'probs': [...]}"]
    try:
        if "mean" in spec or "sd" in spec:
            ok = set(spec) == {"mean", "sd"} and math.isfinite(spec["mean"]) and 0 < spec["sd"] < math.inf
            return [] if ok else ["a numeric target is {'mean': m, 'sd': s} with a finite mean and sd > 0"]
        if "bins" in spec or "probs" in spec:
            bins, probs = np.asarray(spec["bins"], dtype=float), np.asarray(spec["probs"], dtype=float)
            if set(spec) != {"bins", "probs"} or bins.ndim != 1 or len(bins) < 2 or len(probs) != len(bins) - 1 \
                    or not np.all(np.isfinite(bins)) or np.any(np.diff(bins) <= 0):
                return ["bins need at least 2 increasing finite edges and one probability per bin "
                        "(len(probs) == len(bins) - 1)"]
            values = probs
        else:
            values = np.asarray(list(spec.values()), dtype=float)
    except (TypeError, ValueError, KeyError):
        return ["probabilities, edges, mean and sd must be numbers"]
    if np.any(~np.isfinite(values)) or np.any(values < 0) or abs(values.sum() - 1) > 1e-6:
        return [f"probabilities must be >= 0 and sum to 1 (they sum to {values.sum():.6g})"]
    return []


class _Target:
    """One target marginal as indicator / moment functions ``g`` (target subtracted) and a support mask."""

    def __init__(self, col: str, spec: Mapping, frame: pd.DataFrame):
        self.col, self.spec = col, spec
        self.kind = "normal" if "mean" in spec else "bins" if "bins" in spec else "categorical"
        x = frame[col]
        numeric = pd.api.types.is_numeric_dtype(x.dtype) and not pd.api.types.is_bool_dtype(x.dtype)
        if self.kind != "categorical" and not numeric:
            _fail(f"target_marginals[{col!r}]: `{col}` holds {x.dtype} values; a mean/sd or bins target needs "
                  "numbers: give category probabilities instead")
        if self.kind == "categorical":
            self.levels = [k for k, p in spec.items() if p > 0]
            self.probs = np.array([spec[k] for k in self.levels], dtype=float)
            seen = set(x.dropna().tolist())
            absent = [k for k in self.levels if k not in seen]
            if absent:
                _fail(f"target_marginals[{col!r}]: {', '.join(map(repr, absent))} never occur(s) among the eligible "
                      f"pilot draws of `{col}` (values: {', '.join(map(repr, sorted(seen, key=str)))}): a target "
                      "cannot create patients the source does not have; fix the spelling or give it probability 0")
        elif self.kind == "bins":
            self.edges, self.probs = np.asarray(spec["bins"], float), np.asarray(spec["probs"], float)
            counts = np.bincount(self._bin(x), minlength=len(self.probs) + 1)[1:]
            empty = [f"[{a:g}, {b:g}]" for a, b, p, c in zip(self.edges, self.edges[1:], self.probs, counts)
                     if p > 0 and c == 0]
            if empty:
                _fail(f"target_marginals[{col!r}]: bin(s) {', '.join(empty)} have target probability > 0 but no "
                      f"eligible pilot draw (the source's `{col}` lies in [{x.min():g}, {x.max():g}]): the target "
                      "is outside the source's support; change the bins or give them probability 0")
        else:
            lo, hi = x.min(), x.max()
            if not lo < spec["mean"] < hi:
                _fail(f"target_marginals[{col!r}]: mean {spec['mean']:g} is outside the range of the eligible "
                      f"source, [{lo:g}, {hi:g}]: a reweighting cannot move the mean outside the data")

    def _bin(self, x: pd.Series) -> np.ndarray:
        """1-based bin of each value; 0 outside the bins or missing."""
        v = x.to_numpy(dtype=float, na_value=np.nan)
        idx = np.searchsorted(self.edges, v, side="right")
        idx[v == self.edges[-1]] = len(self.edges) - 1
        return np.where(np.isnan(v) | (idx < 1) | (idx >= len(self.edges)), 0, idx)

    def functions(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(support mask, g matrix) with ``E_target[g] = 0``; the last category / bin is implied."""
        x = frame[self.col]
        if self.kind == "normal":
            v = x.to_numpy(dtype=float, na_value=np.nan)
            z = (np.nan_to_num(v) - self.spec["mean"]) / self.spec["sd"]
            return ~np.isnan(v), np.column_stack([z, z * z - 1.0])
        if self.kind == "bins":
            b = self._bin(x)
            hit = b[:, None] == (np.flatnonzero(self.probs > 0) + 1)[None, :]
            probs = self.probs[self.probs > 0]
        else:
            hit = np.column_stack([x.isin([level]).to_numpy(dtype=bool) for level in self.levels])
            probs = self.probs
        return hit.any(axis=1), (hit - probs)[:, :-1].astype(float)

    def achieved(self, frame: pd.DataFrame) -> dict:
        x = frame[self.col]
        if self.kind == "normal":
            return {"mean": float(x.mean()), "sd": float(x.std())}
        if self.kind == "bins":
            return {"probs": (np.bincount(self._bin(x), minlength=len(self.probs) + 1)[1:] / max(len(x), 1)).tolist()}
        return {str(k): float(x.isin([k]).mean()) for k in self.spec}


def _calibrate(g: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, float]:
    """Entropy balancing: ``lam`` minimizing ``log sum base exp(g lam)``, i.e. weights ``base * exp(g lam)``
    whose weighted mean of ``g`` is 0. Returns ``(lam, max |weighted mean of g|)``."""
    def objective(lam):
        z = g @ lam
        zmax = z.max()
        e = base * np.exp(z - zmax)
        p = e / e.sum()
        grad = p @ g
        return np.log(e.sum()) + zmax, grad, (g * p[:, None]).T @ g - np.outer(grad, grad)

    lam = np.zeros(g.shape[1])
    if g.shape[1] == 0:  # a single category or bin with probability > 0: nothing to balance
        return lam, 0.0
    f, grad, hess = objective(lam)
    for _ in range(200):
        if np.abs(grad).max() < 1e-10:
            break
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        while t > 1e-12:
            f_new, grad_new, hess_new = objective(lam - t * step)
            if f_new <= f - 1e-4 * t * grad @ step:
                break
            t /= 2
        if t <= 1e-12:
            break
        lam, f, grad, hess = lam - t * step, f_new, grad_new, hess_new
    return lam, float(np.abs(grad).max())


class _Plan:
    """Criteria, enrichment and calibrated target weights, fitted on the pilot; applied to any batch."""

    def __init__(self, cond: SamplingConditions, frame: pd.DataFrame):
        self.cond = cond
        self.criteria, self.enrich = cond._parsed
        problems = []
        named = [("criteria", self.criteria)] if self.criteria else []
        for key, c in named + [(f"enrich[{c.text!r}]", c) for c, _ in self.enrich]:
            try:
                c.check(frame)
            except InvalidScenarioError as e:
                problems += [f"{key}: {p}" for p in e.problems]
        for col in cond.target_marginals or {}:
            if col not in frame.columns:
                close = difflib.get_close_matches(col, list(frame.columns), 3)
                problems.append(f"target_marginals: unknown column {col!r}; " + (f"did you mean {close}?" if close
                                else f"available columns: {', '.join(map(str, frame.columns))}"))
        if problems:
            _fail(*problems)
        eligible = self.eligible(frame)
        self._check_acceptance(frame, eligible)
        self.clause_rates = dict(self.criteria.pass_rates(frame)) if self.criteria else {}
        pool = frame[eligible].reset_index(drop=True)
        self.targets = [_Target(col, spec, pool) for col, spec in (cond.target_marginals or {}).items()]
        self.weighted = bool(self.enrich or self.targets)
        self.lam, self.shift, self.w_max = np.zeros(0), 0.0, 1.0
        if self.targets:
            support, g = self._functions(pool)
            base = self._enrich_weights(pool) * support
            if not base.any():
                _fail("no eligible pilot draw lies inside every target's support (categories or bins with "
                      f"probability > 0, non-missing values): {self._summary(pool)}")
            self.lam, err = _calibrate(g[base > 0], base[base > 0])
            if err > 1e-6:
                _fail("the target marginals cannot all be reached by reweighting the eligible source (the closest "
                      f"reweighting misses a target by {err:.3g} in standardized units); targets: "
                      f"{cond.target_marginals}; source: {self._summary(pool)}. Move the targets towards the source "
                      "or loosen the criteria")
            self.shift = float((g[base > 0] @ self.lam).max())
        w = self.weights(pool)
        self.w_max = float(w.max())
        self.ess = float(w.sum() ** 2 / (w ** 2).sum())
        self.efficiency = float(w.mean() / self.w_max)
        self.n_pool, self.pool = len(pool), pool
        if self.weighted and self.ess < MIN_EFFECTIVE_SAMPLE_SIZE:
            _fail(f"the enrichment / target marginals are too far from the eligible source: the weights' effective "
                  f"sample size is {self.ess:.1f} of {len(pool):,} eligible pilot draws (need at least "
                  f"{MIN_EFFECTIVE_SAMPLE_SIZE}); source: {self._summary(pool)}. Move the targets towards the source")

    def _summary(self, pool: pd.DataFrame) -> str:
        parts = []
        for t in self.targets:
            x = pool[t.col]
            parts.append(f"{t.col} mean {x.mean():.3g}, sd {x.std():.3g}, range [{x.min():g}, {x.max():g}]"
                         if t.kind != "categorical" else
                         f"{t.col} " + ", ".join(f"{k}: {v:.1%}" for k, v in x.value_counts(normalize=True).items()))
        return "; ".join(parts)

    def _check_acceptance(self, frame, eligible):
        rate, n = float(eligible.mean()), len(frame)
        if rate >= self.cond.min_acceptance and eligible.any():
            return
        est = f"{eligible.sum():,} of {n:,} pilot draws ({rate:.3%})" if eligible.any() else \
            f"none of {n:,} pilot draws (below {3 / n:.3%} with 95 % confidence)"
        clauses = "; ".join(f"{c}: {r:.1%}" for c, r in self.criteria.pass_rates(frame))
        hints = self.criteria.value_hints(frame)
        _fail(f"the eligibility criteria select almost nobody: {est} are eligible, below min_acceptance = "
              f"{self.cond.min_acceptance:g} ({self.cond.min_acceptance:.2%}). Pass rate of each `and` clause, "
              f"most restrictive first: {clauses}."
              + (f" Note: {' '.join(hints)}" if hints else "")
              + " Loosen the most restrictive clause, or lower min_acceptance (each patient then costs about "
              "1 / acceptance draws)")

    def eligible(self, frame: pd.DataFrame) -> np.ndarray:
        return self.criteria.evaluate(frame) if self.criteria else np.ones(len(frame), dtype=bool)

    def _enrich_weights(self, frame: pd.DataFrame) -> np.ndarray:
        w = np.ones(len(frame))
        for c, factor in self.enrich:
            w[c.evaluate(frame)] *= factor
        return w

    def _functions(self, frame):
        parts = [t.functions(frame) for t in self.targets]
        return np.logical_and.reduce([s for s, _ in parts]), np.hstack([g for _, g in parts])

    def weights(self, frame: pd.DataFrame) -> np.ndarray:
        w = self._enrich_weights(frame)
        if self.targets:
            support, g = self._functions(frame)
            w *= support * np.exp(np.minimum(g @ self.lam - self.shift, 50.0))
        return w

    def info(self, chosen: pd.DataFrame) -> dict:
        out = {"criteria": str(self.criteria) if self.criteria else None,
               "clause_pass_rates": self.clause_rates,
               "effective_sample_size": self.ess, "n_pilot_eligible": self.n_pool,
               "weight_efficiency": self.efficiency,
               "target_marginals": dict(self.cond.target_marginals or {}),
               "achieved_marginals": {t.col: t.achieved(chosen) for t in self.targets}, "enrichment": {}}
        for c, factor in self.enrich:
            p, q = float(np.mean(c.evaluate(self.pool))), float(np.mean(c.evaluate(chosen)))
            ratio = q * (1 - p) / (p * (1 - q)) if 0 < p < 1 and 0 < q < 1 else None
            out["enrichment"][str(c)] = {"weight": factor, "source_fraction": p, "sampled_fraction": q,
                                         "achieved_ratio": ratio}
        return out


def _as_conditions(conditions) -> SamplingConditions:
    if isinstance(conditions, SamplingConditions):
        return conditions
    if isinstance(conditions, str):
        return SamplingConditions(criteria=conditions)
    if isinstance(conditions, Mapping):
        return SamplingConditions.from_dict(conditions)
    raise TypeError(f"conditions must be SamplingConditions, a criteria string or a mapping, "
                    f"not {type(conditions).__name__}")


def draw_conditionally(generator, n: int, *, rng: np.random.Generator, conditions):
    """``n`` patients from ``generator`` under ``conditions`` (see the module docstring)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed))")
    cond = _as_conditions(conditions)
    if n < 0:
        raise InvalidScenarioError(f"the number of patients must be >= 0, got {n}", source=_SOURCE)
    pilot_n = min(cond.pilot_draws, cond.max_draws)
    batch = generator._draw(pilot_n, rng=rng)
    frame = generator.baseline_frame(batch)
    plan = _Plan(cond, frame)
    drawn, n_eligible, capped = 0, 0, 0

    def keep(frame):
        nonlocal drawn, n_eligible, capped
        eligible = plan.eligible(frame)
        drawn, n_eligible = drawn + len(frame), n_eligible + int(eligible.sum())
        if not plan.weighted:
            return eligible
        u = plan.weights(frame) / plan.w_max
        capped += int(np.sum(eligible & (u > 1)))
        return eligible & (rng.random(len(frame)) < u)

    kept = keep(frame)
    rate = max(kept.mean(), 1.0 / pilot_n)
    while kept.sum() < n:
        size = math.ceil((n + 4 * math.sqrt(n) + 10) / rate)
        if drawn + size > cond.max_draws:
            _fail(f"{n:,} patients need about {math.ceil(n / rate):,} more draws (eligible fraction "
                  f"{n_eligible / drawn:.3%}, weight efficiency {plan.efficiency:.3f}), beyond max_draws = "
                  f"{cond.max_draws:,} ({drawn:,} drawn so far). Raise max_draws (memory grows with it), draw fewer "
                  "patients, or loosen the criteria / targets")
        batch = generator._draw(size, rng=rng)
        frame = generator.baseline_frame(batch)
        kept = keep(frame)
        rate = max(0.8 * min(kept.mean(), rate), 1.0 / size)  # used only if this batch fell short
    idx = np.flatnonzero(kept)[:n]
    out = batch.take(idx)
    out.info.update(plan.info(frame.iloc[idx].reset_index(drop=True)))
    out.info.update(acceptance_rate=n_eligible / drawn, n_drawn=drawn, n_eligible=n_eligible, pilot_draws=pilot_n,
                    weights_capped_fraction=capped / max(n_eligible, 1))
    return out
