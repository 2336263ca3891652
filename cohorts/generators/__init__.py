"""Cohort generators: the :class:`CohortGenerator` contract, the registry and the generator families.

``get_generator("default")`` gives the Gaussian-copula + explicit outcome model generator
(:mod:`cohorts.generators.default`); ``available_generators()`` lists every registered name.
"""

from cohorts.generators import default as _default  # noqa: F401  (registers "default")
from cohorts.generators.base import REGISTRY, CohortGenerator, available_generators, get_generator, register
from cohorts.generators.copula import GaussianCopula
from cohorts.generators.default import DefaultGenerator
from cohorts.generators.latent import BinaryLatent, ContinuousLatent, PatientDraw, SurvivalLatent, TrajectoryLatent
from cohorts.generators.survival import WeibullPH
from cohorts.generators.trajectory import TrajectoryModel

__all__ = [
    "CohortGenerator",
    "register",
    "get_generator",
    "available_generators",
    "REGISTRY",
    "DefaultGenerator",
    "GaussianCopula",
    "WeibullPH",
    "TrajectoryModel",
    "PatientDraw",
    "SurvivalLatent",
    "TrajectoryLatent",
    "ContinuousLatent",
    "BinaryLatent",
]
