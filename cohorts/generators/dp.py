"""Differentially private training helpers (DP-SGD) for the neural families.

Mechanism: DP-SGD (Abadi et al., CCS 2016). Each step Poisson-samples patients (rate ``q``), computes one
gradient per patient, clips each to L2 norm ``max_grad_norm`` (``C``), sums, adds ``N(0, (sigma C)^2)`` noise
and divides by the expected batch size. The noise multiplier ``sigma`` is the smallest one (opacus
``get_noise_multiplier``, binary search to 0.01 in epsilon) for which the RDP accountant (Mironov 2017; opacus
``RDPAccountant``) gives at most ``(dp_epsilon, dp_delta)`` after the planned number of steps; the epsilon
actually spent is read back from the accountant after training (``privacy_["epsilon"]``, at most the target).

* ``tvae``: the whole VAE (encoder, decoder, decoder noise scales) is made private with opacus
  ``PrivacyEngine.make_private_with_epsilon`` (hooks mode, Poisson sampling, flat clipping).
* ``ctgan``: only the discriminator sees real rows, so only its updates are privatized; the generator's updates
  are post-processing of the private discriminator. The WGAN-GP gradient penalty needs second derivatives,
  which opacus' per-layer hooks do not compute, so per-patient gradients are computed exactly with
  ``torch.func.vmap(grad(...))`` and clipped / noised by :class:`FunctionalDPSGD` below (the same arithmetic
  as opacus' ``DPOptimizer``), with opacus' RDP accountant and noise calibration. The discriminator then packs
  one row (``pac`` 1) and real rows are Poisson-sampled instead of drawn by training-by-sampling, so that one
  patient changes one clipped gradient of one Poisson batch (see :mod:`cohorts.generators.ctgan`).

``dp_delta`` defaults to ``1 / n^1.1`` (``n`` training patients), below ``1/n`` as DP practice requires.

Randomness: Poisson sampling and noise come from a ``torch.Generator`` seeded from the caller's numpy
``rng`` and opacus runs with ``secure_mode=False``, so a seed gives the same model and bit-identical frames
(tested, DP on). That is a reproducibility choice with a cost: opacus' secure mode (a cryptographic RNG, noise
hardened against floating-point attacks) cannot be seeded and is not offered here; the accounting is the same,
but a release meant to resist such an attacker would need it.

What is NOT private (be honest in a model card): the data transformer is fitted on the raw data (mixture modes,
observed levels, min/max, missing rates; for ``ctgan`` also the category frequencies used to draw conditional
vectors). These are released with the model. The guarantee covers the network weights learned by DP-SGD
given that metadata, not the metadata itself; with public bounds and levels the latter could be fixed in
advance. The outcome models of the sequential generator are not trained with DP either.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MECHANISM", "default_delta", "resolve_delta", "make_private_module", "FunctionalDPSGD",
           "privacy_report"]

MECHANISM = "DP-SGD (opacus RDP accountant)"
SCOPE = ("the data transformer (mixture modes, levels, min/max, missing rates, category frequencies) and the "
         "outcome models are fitted on the raw data without privacy; the guarantee covers the network weights only")


def default_delta(n: int) -> float:
    """``1 / n^1.1``: the default ``delta`` for ``n`` training patients."""
    return 1.0 / max(int(n), 2) ** 1.1


def resolve_delta(delta: float | None, n: int) -> float:
    d = default_delta(n) if delta is None else float(delta)
    if not 0.0 < d < 1.0:
        raise ValueError(f"dp_delta must be in (0, 1), got {delta!r}")
    return d


def check_epsilon(epsilon) -> float:
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"dp_epsilon must be a positive number, got {epsilon!r}")
    return float(epsilon)


def privacy_report(*, epsilon: float, delta: float, target_epsilon: float, noise_multiplier: float,
                   max_grad_norm: float, sample_rate: float, steps: int, delta_given: bool, part: str) -> dict:
    """The ``privacy_`` dictionary a model card reports."""
    return {"epsilon": float(epsilon), "delta": float(delta), "mechanism": MECHANISM,
            "target_epsilon": float(target_epsilon), "noise_multiplier": float(noise_multiplier),
            "max_grad_norm": float(max_grad_norm), "sample_rate": float(sample_rate), "steps": int(steps),
            "delta_rule": "given" if delta_given else "1/n^1.1", "private_part": part, "not_private": SCOPE}


def make_private_module(module, optimizer, data_loader, *, epsilon: float, delta: float, epochs: int,
                        max_grad_norm: float, generator):
    """opacus ``make_private_with_epsilon`` (RDP accountant, Poisson sampling from ``generator``, noise from
    ``generator``): returns ``(private_module, dp_optimizer, dp_loader, engine)``."""
    import warnings

    from opacus import PrivacyEngine
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
        engine = PrivacyEngine(accountant="rdp", secure_mode=False)
        private, opt, loader = engine.make_private_with_epsilon(
            module=module, optimizer=optimizer, data_loader=data_loader, target_epsilon=epsilon,
            target_delta=delta, epochs=epochs, max_grad_norm=max_grad_norm, poisson_sampling=True,
            noise_generator=generator)
    return private, opt, loader, engine


class FunctionalDPSGD:
    """Clip per-patient gradients, sum, add Gaussian noise, average; opacus RDP accounting.

    ``sample_rate`` is the Poisson rate ``q`` and ``steps`` the number of private steps planned; the noise
    multiplier is calibrated at construction. Call :meth:`privatize` once per step with the per-patient
    gradients (leading dimension = patients in the Poisson batch): it returns the noisy mean gradients and
    records the step in the accountant.
    """

    def __init__(self, *, epsilon: float, delta: float, max_grad_norm: float, sample_rate: float, steps: int,
                 generator):
        from opacus.accountants import RDPAccountant
        from opacus.accountants.utils import get_noise_multiplier
        self.epsilon, self.delta, self.max_grad_norm = check_epsilon(epsilon), float(delta), float(max_grad_norm)
        self.sample_rate, self.steps, self.generator = float(sample_rate), int(steps), generator
        self.noise_multiplier = get_noise_multiplier(target_epsilon=self.epsilon, target_delta=self.delta,
                                                     sample_rate=self.sample_rate, steps=self.steps,
                                                     accountant="rdp")
        self.accountant = RDPAccountant()

    def privatize(self, grads: list, expected_batch_size: float) -> list:
        import torch
        b = grads[0].shape[0]
        if b:
            norms = torch.stack([g.reshape(b, -1).norm(dim=1) for g in grads], dim=1).norm(dim=1)
            factor = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        std = self.noise_multiplier * self.max_grad_norm
        out = []
        for g in grads:
            summed = torch.einsum("i,i...->...", factor, g) if b else g.new_zeros(g.shape[1:])
            noise = torch.normal(0.0, std, size=summed.shape, generator=self.generator)
            out.append((summed + noise) / expected_batch_size)
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        return out

    def report(self, *, delta_given: bool, part: str) -> dict:
        return privacy_report(epsilon=self.accountant.get_epsilon(delta=self.delta), delta=self.delta,
                              target_epsilon=self.epsilon, noise_multiplier=self.noise_multiplier,
                              max_grad_norm=self.max_grad_norm, sample_rate=self.sample_rate,
                              steps=len(self.accountant.history) and sum(h[2] for h in self.accountant.history),
                              delta_given=delta_given, part=part)


def spent_epsilon(engine, delta: float) -> float:
    """Epsilon spent so far by an opacus ``PrivacyEngine`` at ``delta``."""
    return float(engine.accountant.get_epsilon(delta=delta))


def engine_history(engine) -> tuple[float, float, int]:
    """``(noise_multiplier, sample_rate, steps)`` from an opacus RDP accountant's history."""
    hist = engine.accountant.history
    if not hist:
        return float("nan"), float("nan"), 0
    return float(hist[-1][0]), float(hist[-1][1]), int(sum(h[2] for h in hist))


def seed_from(rng: np.random.Generator) -> int:
    """A torch seed drawn from a numpy generator."""
    return int(rng.integers(2**62))
