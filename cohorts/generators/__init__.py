"""Cohort generators: the :class:`CohortGenerator` contract, the registry and the generator families.

``get_generator("default")`` gives the Gaussian-copula + explicit outcome model generator
(:mod:`cohorts.generators.sequential`); ``available_generators()`` lists every registered name.
"""

from cohorts.generators import sequential as _sequential  # noqa: F401  (registers "copula", "default")
from cohorts.generators.base import REGISTRY, CohortGenerator, available_generators, get_generator, register
from cohorts.generators.copula import GaussianCopula
from cohorts.generators.cart import CARTGenerator  # registers "cart"
from cohorts.generators.sequential import CopulaGenerator, DefaultGenerator, SequentialGenerator
from cohorts.generators.tvae import TVAEGenerator  # registers "tvae"
from cohorts.generators.ctgan import CTGANGenerator  # registers "ctgan"
from cohorts.generators.auto import AutoGenerator  # registers "auto"
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
    "CopulaGenerator",
    "CARTGenerator",
    "SequentialGenerator",
    "TVAEGenerator",
    "CTGANGenerator",
    "AutoGenerator",
    "GaussianCopula",
    "WeibullPH",
    "TrajectoryModel",
    "PatientDraw",
    "SurvivalLatent",
    "TrajectoryLatent",
    "ContinuousLatent",
    "BinaryLatent",
]
