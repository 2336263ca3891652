"""The default generator on the built-in cohorts: the primary model fits (no silent slow fallback)."""

import numpy as np
import pytest

from cohorts.builtin import load_builtin
from cohorts.generators import get_generator


@pytest.mark.parametrize("name", ["als-natural-history", "als-natural-history-survival", "va-lung"])
def test_default_generator_fits_builtin_with_primary_model(name):
    cohort = load_builtin(name)
    g = get_generator("default").fit(cohort.data, cohort.schema, rng=np.random.default_rng(0))
    notes = getattr(g.outcome_model_, "fit_notes_", [])
    assert not any("failed" in n for n in notes), notes
    synth = g.sample(500, rng=np.random.default_rng(1))
    assert synth[cohort.schema.id].nunique() == 500
