"""Group-sequential boundaries from error-spending functions, by numerical integration (no R, no rpact).

Canonical joint distribution (Jennison & Turnbull 2000, ch. 3 and 19): at looks with information fractions
``0 < t_1 < ... < t_K = 1`` the statistics ``Z_k = S_k / sqrt(t_k)`` have independent increments,
``S_k - S_{k-1} ~ N(theta (t_k - t_{k-1}), t_k - t_{k-1})``, so ``E Z_k = theta sqrt(t_k)``; ``theta`` (the
*drift*) is the expected Z at full information. Large Z favours the treatment.

Spending functions (cumulative error spent at fraction ``t``; ``a`` = alpha, or beta for futility):

* ``"obf"`` O'Brien-Fleming type (Lan & DeMets 1983): ``s 2 (1 - Phi(z_{1 - a/(2s)} / sqrt(t)))`` with ``s`` the
  number of sides (one-sided: ``2 - 2 Phi(z_{1-a/2} / sqrt(t))``; exactly rpact's ``asOF``); for beta: ``s = 1``;
* ``"pocock"`` Pocock type (Lan & DeMets 1983): ``a log(1 + (e - 1) t)``;
* ``"hsd"`` Hwang, Shih & DeCani (1990): ``a (1 - exp(-gamma t)) / (1 - exp(-gamma))``, linear ``a t`` at gamma 0.

Numerics (the Armitage-McPherson-Rowe recursion, J&T section 19.2): the sub-density of ``Z_k`` on the
continuation region (not stopped at looks ``1..k``) is carried on a Simpson-rule grid over the continuation
interval, truncated at ``theta sqrt(t_k) -/+ 8.5`` (mass outside < 1e-16), with step ``w / mesh`` where ``w`` is
the smallest of 1 and the sd of the neighbouring increments on the Z scale (``sqrt((t_k - t_{k-1}) / t_k)``,
``sqrt((t_{k+1} - t_k) / t_k)``), ``mesh = 24`` by default (a few hundred to a few thousand points per look). The
density at the next look is one matrix-vector product with the Gaussian transition kernel; crossing
probabilities are exact normal tails integrated against the grid density. Each efficacy boundary solves (Brent,
xtol 1e-12) ``P_0(cross at look k, not before) = alpha(t_k) - alpha(t_{k-1})``; two-sided designs are symmetric
(``|Z_k| >= c_k``, each side spends half); a look with nothing to spend in double precision gets ``c_k = inf``.
Accuracy at the default mesh: about 1e-8 on probabilities and 5e-8 on the z scale (rpact agrees to that).

Futility (one-sided only, non-binding, beta-spending as rpact ``typeBetaSpending`` with ``bindingFutility =
FALSE``): the efficacy boundaries above ignore futility. For a drift ``theta``
the futility bound at each interim solves ``P_theta(Z_k <= f_k, continued to k) = beta(t_k) - beta(t_{k-1})``
with the continuation region ``(f_j, c_j)`` at earlier looks (``f_k`` is capped at ``c_k``); ``theta`` is then
found (Brent on ``[-4, 12]``) so that the last futility bound meets the last efficacy bound, ``f_K = c_K``; the
power at ``theta`` with futility obeyed is then ``1 - beta`` (up to the grid error). Without futility but with ``beta`` given,
``theta`` solves ``P_theta(cross an upper efficacy bound) = 1 - beta`` (for two-sided designs the lower crossing
does not count as power, as rpact's default ``twoSidedPower = FALSE``). Either way the inflation factor is
``(theta / (z_{1-alpha/sides} + z_{1-beta}))^2``: the maximum information relative to a fixed-sample design with
the same alpha and power (rpact's ``inflationFactor = shift / nFixed`` with ``shift = theta^2``).

Checked against rpact 3.3 ``getDesignGroupSequential`` / ``getDesignCharacteristics`` (critical values,
futility bounds, alpha spent, inflation factor, crossing probabilities and expected information) and by Monte
Carlo simulation of the Brownian motion in tests/analysis/test_group_sequential.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from cohorts.errors import InvalidScenarioError

__all__ = ["SPENDING_FUNCTIONS", "spending", "GroupSequentialDesign", "Boundaries", "boundaries",
           "crossing_probabilities"]

SPENDING_FUNCTIONS = ("obf", "pocock", "hsd")
_TAIL = 8.5                 # grid half-width around the drift mean (Z scale)
_MESH = 24                  # grid points per kernel sd
_XTOL = 1e-12               # Brent tolerance on z
_THETA_BRACKET = (-4.0, 12.0)
_Z_MAX = 40.0               # boundaries are searched in [-_Z_MAX, _Z_MAX]


def spending(t, total: float, kind: str, gamma: float | None = None, sides: int = 1) -> np.ndarray:
    """Cumulative error spent at information fractions ``t`` (array) for a total error ``total`` (see module)."""
    t = np.asarray(t, dtype=float)
    if kind == "obf":
        return sides * 2.0 * stats.norm.sf(stats.norm.isf(total / (2.0 * sides)) / np.sqrt(t))
    if kind == "pocock":
        return total * np.log1p((math.e - 1.0) * t)
    if kind == "hsd":
        if gamma == 0:
            return total * t
        return total * np.expm1(-gamma * t) / np.expm1(-gamma)
    raise InvalidScenarioError(f"spending function {kind!r} is unknown; choose one of {', '.join(SPENDING_FUNCTIONS)}")


@dataclass(frozen=True)
class GroupSequentialDesign:
    """Looks at ``information_fractions`` (strictly increasing in (0, 1], last 1), overall one- or two-sided
    ``alpha`` spent by ``spending`` (``gamma`` for ``"hsd"``); optional non-binding futility by beta-spending
    (``futility`` with ``beta``, ``gamma_futility`` for ``"hsd"``; one-sided designs only). ``beta`` alone sets the
    target power used for the inflation factor."""

    information_fractions: tuple[float, ...]
    alpha: float = 0.025
    spending: str = "obf"
    gamma: float | None = None
    futility: str | None = None
    beta: float | None = None
    sided: int = 1
    gamma_futility: float | None = None

    def __post_init__(self):
        try:
            t = tuple(float(x) for x in np.atleast_1d(np.asarray(self.information_fractions, dtype=float)))
        except (TypeError, ValueError):
            raise InvalidScenarioError("information_fractions must be numbers, e.g. (0.5, 1.0)") from None
        object.__setattr__(self, "information_fractions", t)
        problems = []
        if not t:
            problems.append("information_fractions is empty; give at least (1.0,)")
        elif not all(np.isfinite(t)) or t[0] <= 0 or t[-1] != 1.0 or any(b <= a for a, b in zip(t, t[1:])):
            problems.append(f"information_fractions {t} must be strictly increasing in (0, 1] and end at 1.0, "
                            "e.g. (0.33, 0.67, 1.0)")
        if self.sided not in (1, 2):
            problems.append(f"sided = {self.sided!r}; use 1 (one-sided) or 2 (symmetric two-sided)")
        top = 0.5 if self.sided == 1 else 1.0
        if not _is_number(self.alpha) or not 0 < self.alpha < top:
            problems.append(f"alpha = {self.alpha!r} must lie in (0, {top}) for sided = {self.sided}")
        problems += _spending_problems("spending", self.spending, "gamma", self.gamma, required=True)
        problems += _spending_problems("futility", self.futility, "gamma_futility", self.gamma_futility,
                                       required=False)
        if self.futility is not None and self.beta is None:
            problems.append(f"futility = {self.futility!r} needs beta (the type II error it spends), e.g. 0.1")
        if self.futility is not None and self.sided == 2:
            problems.append("futility boundaries are supported for one-sided designs only; set sided = 1 or "
                            "futility = None")
        if self.beta is not None and (not _is_number(self.beta) or not 0 < self.beta < 1 - self.alpha_one_sided):
            problems.append(f"beta = {self.beta!r} must lie in (0, 1 - alpha/sided)")
        if problems:
            raise InvalidScenarioError(problems, source="group-sequential design")

    @property
    def n_looks(self) -> int:
        return len(self.information_fractions)

    @property
    def alpha_one_sided(self) -> float:
        return self.alpha / self.sided if _is_number(self.alpha) and self.sided in (1, 2) else float("nan")


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool) and math.isfinite(x)


def _spending_problems(key, kind, gamma_key, gamma, *, required) -> list[str]:
    if kind is None and not required:
        return [] if gamma is None else [f"{gamma_key} is set but {key} is None; drop {gamma_key}"]
    if kind not in SPENDING_FUNCTIONS:
        return [f"{key} = {kind!r} is unknown; choose one of {', '.join(SPENDING_FUNCTIONS)}"]
    if kind == "hsd" and not _is_number(gamma):
        return [f"{key} = 'hsd' needs a finite number {gamma_key} (e.g. -4 for O'Brien-Fleming-like, 1 for "
                "Pocock-like, 0 for linear)"]
    if kind != "hsd" and gamma is not None:
        return [f"{gamma_key} = {gamma!r} is only used with {key} = 'hsd'; drop it"]
    return []


@dataclass(frozen=True, eq=False)
class Boundaries:
    """Boundaries of a :class:`GroupSequentialDesign` on the Z scale, one entry per look.

    ``efficacy``: reject at look k when ``Z_k >= efficacy[k]`` (two-sided: ``|Z_k| >= efficacy[k]``).
    ``futility`` (or None): stop for futility at an interim look when ``Z_k <= futility[k]`` (non-binding); the
    last entry equals the last efficacy bound. ``alpha_spent`` / ``beta_spent``: cumulative spending at each
    look. ``nominal_p``: the nominal p-value a look's boundary corresponds to (one-sided ``1 - Phi(c)``;
    two-sided ``2 (1 - Phi(c))``). ``drift``: the expected Z at full information giving power ``1 - beta``
    (None without beta); ``inflation_factor``: maximum information over that of the fixed design.
    """

    design: GroupSequentialDesign
    efficacy: np.ndarray
    futility: np.ndarray | None
    alpha_spent: np.ndarray
    beta_spent: np.ndarray | None
    nominal_p: np.ndarray
    drift: float | None
    inflation_factor: float | None
    method: str = field(default="", repr=False)

    @property
    def information_fractions(self) -> np.ndarray:
        return np.asarray(self.design.information_fractions)

    def summary(self) -> pd.DataFrame:
        """One row per look: fraction, boundaries, nominal p, cumulative alpha (and beta) spent."""
        k = self.design.n_looks
        return pd.DataFrame({
            "look": np.arange(1, k + 1), "information_fraction": self.information_fractions,
            "efficacy_z": self.efficacy, "futility_z": np.full(k, np.nan) if self.futility is None else self.futility,
            "nominal_p": self.nominal_p, "alpha_spent": self.alpha_spent,
            "beta_spent": np.full(k, np.nan) if self.beta_spent is None else self.beta_spent})


class _Walk:
    """The sub-density of ``Z_k`` on the continuation region, walked look by look (grid ``u``, weights ``g``)."""

    def __init__(self, t: np.ndarray, theta: float, mesh: int = _MESH):
        self.t, self.theta, self.mesh = t, float(theta), mesh
        self.k, self.t_prev = 0, 0.0
        self.u, self.g = np.zeros(1), np.ones(1)     # a point mass at S_0 = 0

    def _arg(self, c) -> np.ndarray:
        """Standardised ``(c - E[Z_k | u]) / sd`` for every grid point (rows) and every ``c`` (columns)."""
        tk = self.t[self.k]
        d = tk - self.t_prev
        c = np.atleast_1d(np.asarray(c, dtype=float))
        return (c[None, :] * math.sqrt(tk) - self.u[:, None] * math.sqrt(self.t_prev) - self.theta * d) / math.sqrt(d)

    def below(self, c) -> float:
        """``P(Z_k <= c, continued to look k)``."""
        return float(self.g @ special.ndtr(self._arg(c))[:, 0])

    def above(self, c) -> float:
        """``P(Z_k >= c, continued to look k)``."""
        return float(self.g @ special.ndtr(-self._arg(c))[:, 0])

    def advance(self, lower: float, upper: float) -> None:
        """Continue on ``lower < Z_k < upper`` to the next look."""
        k, t = self.k, self.t
        tk = t[k]
        d = tk - self.t_prev
        if k + 1 < len(t):
            mean = self.theta * math.sqrt(tk)
            lo, hi = max(lower, mean - _TAIL), min(upper, mean + _TAIL)
            if hi <= lo:
                z, g = np.zeros(1), np.zeros(1)
            else:
                width = min(1.0, math.sqrt(d / tk), math.sqrt((t[k + 1] - tk) / tk))
                m = 2 * max(2, math.ceil((hi - lo) * self.mesh / (2 * width)))
                z = np.linspace(lo, hi, m + 1)
                w = np.full(m + 1, 2.0)
                w[1::2], w[0], w[-1] = 4.0, 1.0, 1.0
                w *= (hi - lo) / (3 * m)
                x = (z[:, None] * math.sqrt(tk) - self.u[None, :] * math.sqrt(self.t_prev) - self.theta * d) \
                    / math.sqrt(d)
                dens = (np.exp(-0.5 * x * x) @ self.g) * math.sqrt(tk / d) / math.sqrt(2 * math.pi)
                g = w * dens
            self.u, self.g = z, g
        self.t_prev, self.k = tk, k + 1


def _root(f, lo: float, hi: float) -> float:
    """Root of an increasing ``f`` on ``[lo, hi]``, clipped to the ends when ``f`` does not change sign."""
    flo, fhi = f(lo), f(hi)
    if flo >= 0:
        return lo
    if fhi <= 0:
        return hi
    return optimize.brentq(f, lo, hi, xtol=_XTOL, rtol=4 * np.finfo(float).eps)


def _efficacy(design: GroupSequentialDesign, mesh: int) -> np.ndarray:
    t = np.asarray(design.information_fractions)
    spent = spending(t, design.alpha, design.spending, design.gamma, design.sided)
    inc = np.diff(spent, prepend=0.0)
    walk, c = _Walk(t, 0.0, mesh), np.empty(len(t))
    for k in range(len(t)):
        if design.sided == 1:
            c[k] = _root(lambda x: inc[k] - walk.above(x), -_Z_MAX, _Z_MAX)
        else:
            c[k] = _root(lambda x: inc[k] - walk.above(x) - walk.below(-x), 0.0, _Z_MAX)
        if c[k] == _Z_MAX:          # nothing to spend in double precision (e.g. OBF at t = 0.001): no boundary
            c[k] = np.inf
        walk.advance(-c[k] if design.sided == 2 else -np.inf, c[k])
    return c


def _futility_at(theta: float, t: np.ndarray, c: np.ndarray, beta_inc: np.ndarray, mesh: int) -> np.ndarray:
    """Futility bounds for drift ``theta`` (the last one unconstrained, for the search on theta)."""
    walk, f = _Walk(t, theta, mesh), np.empty(len(t))
    for k in range(len(t)):
        last = k == len(t) - 1
        f[k] = _root(lambda x: walk.below(x) - beta_inc[k], -_Z_MAX, _Z_MAX if last else c[k])
        walk.advance(f[k], c[k])
    return f


def _power(theta: float, t: np.ndarray, c: np.ndarray, sided: int, mesh: int) -> float:
    walk, p = _Walk(t, theta, mesh), 0.0
    for k in range(len(t)):
        p += walk.above(c[k])
        walk.advance(-c[k] if sided == 2 else -np.inf, c[k])
    return p


def boundaries(design: GroupSequentialDesign, *, mesh: int = _MESH) -> Boundaries:
    """Efficacy (and non-binding futility) boundaries of ``design``; see the module docstring for the method."""
    t = np.asarray(design.information_fractions)
    c = _efficacy(design, mesh)
    alpha_spent = spending(t, design.alpha, design.spending, design.gamma, design.sided)
    sf = stats.norm.sf(c)
    nominal_p = sf if design.sided == 1 else 2 * sf
    futility = beta_spent = theta = inflation = None
    if design.beta is not None:
        lo, hi = _THETA_BRACKET
        if design.futility is not None:
            beta_spent = spending(t, design.beta, design.futility, design.gamma_futility, 1)
            beta_inc = np.diff(beta_spent, prepend=0.0)
            gap = lambda th: _futility_at(th, t, c, beta_inc, mesh)[-1] - c[-1]  # noqa: E731
            if not gap(lo) < 0 < gap(hi):
                raise InvalidScenarioError(f"no drift in [{lo}, {hi}] makes the beta-spending futility bounds meet "
                                           "the last efficacy bound; check alpha, beta and the spending functions",
                                           source="group-sequential design")
            theta = optimize.brentq(gap, lo, hi, xtol=_XTOL)
            futility = _futility_at(theta, t, c, beta_inc, mesh)
            futility[-1] = c[-1]
        else:
            theta = optimize.brentq(lambda th: _power(th, t, c, design.sided, mesh) - (1 - design.beta), lo, hi,
                                    xtol=_XTOL)
        fixed = stats.norm.isf(design.alpha_one_sided) + stats.norm.isf(design.beta)
        inflation = (theta / fixed) ** 2
    method = (f"group-sequential, {design.sided}-sided alpha {design.alpha} spent by {design.spending}"
              + (f"(gamma={design.gamma})" if design.spending == "hsd" else "")
              + (f"; non-binding futility, beta {design.beta} spent by {design.futility}" if futility is not None
                 else ""))
    return Boundaries(design, c, futility, alpha_spent, beta_spent, nominal_p, theta, inflation, method)


def crossing_probabilities(bounds: Boundaries, drift, *, obey_futility: bool = True,
                           mesh: int = _MESH) -> pd.DataFrame:
    """Per drift (scalar or array: the expected Z at full information) and look: the probability of stopping
    there for efficacy (``efficacy``; two-sided: either side, ``efficacy_lower`` the part below ``-c``) or for
    futility at an interim look (``futility``; 0 when there is none or ``obey_futility`` is False), and the
    cumulative sums. The last look stops every trial left; ``1 - cumulative_efficacy[K]`` is the probability of
    not rejecting."""
    t = bounds.information_fractions
    c, k_max = bounds.efficacy, len(t)
    use_fut = bounds.futility is not None and obey_futility
    rows = []
    for i, theta in enumerate(np.atleast_1d(np.asarray(drift, dtype=float))):
        walk = _Walk(t, theta, mesh)
        for k in range(k_max):
            upper = walk.above(c[k])
            lower_eff = walk.below(-c[k]) if bounds.design.sided == 2 else 0.0
            lo = -c[k] if bounds.design.sided == 2 else (bounds.futility[k] if use_fut else -np.inf)
            fut = walk.below(lo) if use_fut and k < k_max - 1 else 0.0
            rows.append((i, theta, k + 1, t[k], upper + lower_eff, lower_eff, fut))
            walk.advance(lo, c[k])
    out = pd.DataFrame(rows, columns=["scenario", "drift", "look", "information_fraction", "efficacy", "efficacy_lower",
                                      "futility"])
    grouped = out.groupby("scenario", sort=False)
    out["cumulative_efficacy"] = grouped["efficacy"].cumsum()
    out["cumulative_futility"] = grouped["futility"].cumsum()
    out["cumulative_stop"] = np.where(out["look"] == k_max, 1.0, out["cumulative_efficacy"] +
                                      out["cumulative_futility"])
    return out.drop(columns="scenario")
