"""Small fitted generators with known latent outcomes, for testing the trial and power layers exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohorts.generators.latent import (BinaryLatent, ContinuousLatent, PatientDraw, SurvivalLatent,
                                       TrajectoryLatent)
from cohorts.schema import CohortSchema, OutcomeSpec


class KnownGenerator:
    """Duck-typed fitted generator: baseline ``x ~ N(0, 1)`` and an outcome with known parameters.

    * continuous: ``y ~ N(mean, sd)``
    * binary: ``P(y = 1) = p``
    * tte: exponential event times with ``rate`` per unit (Weibull shape 1)
    * longitudinal: start ``N(36, 5)``, linear decline ``slope_i ~ N(-1, slope_sd)`` per month, noise ``sigma``
    """

    def __init__(self, kind: str, *, mean=0.0, sd=1.0, p=0.3, rate=0.01, slope_sd=0.5, sigma=1.0,
                 unit="days"):
        self.kind, self.mean, self.sd, self.p, self.rate = kind, mean, sd, p, rate
        self.slope_sd, self.sigma, self.unit = slope_sd, sigma, unit
        spec = {"continuous": OutcomeSpec("continuous", value="y"),
                "binary": OutcomeSpec("binary", value="y"),
                "tte": OutcomeSpec("tte", time="t", event="e", time_unit=unit),
                "longitudinal": OutcomeSpec("longitudinal", value="y", visit="month")}[kind]
        self.schema_ = CohortSchema(id="id", outcome=spec, numeric=("x",))

    def draw(self, n: int, *, rng: np.random.Generator) -> PatientDraw:
        base = pd.DataFrame({"x": rng.normal(size=n)})
        if self.kind == "continuous":
            out = ContinuousLatent(np.full(n, self.mean), rng.normal(0, self.sd, n))
        elif self.kind == "binary":
            out = BinaryLatent(np.full(n, np.log(self.p / (1 - self.p))), rng.uniform(size=n))
        elif self.kind == "tte":
            out = SurvivalLatent(rng.exponential(size=n), np.zeros(n), lambda h: h / self.rate, self.unit)
        else:
            slope = rng.normal(-1.0, self.slope_sd, n)
            out = TrajectoryLatent(rng.normal(36, 5, n), lambda t, s=slope: s[:, None] * np.asarray(t)[None, :],
                                   self.sigma, params={"slope": slope})
        return PatientDraw(base, out)
