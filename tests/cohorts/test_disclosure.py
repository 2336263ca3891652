"""Released samples never replicate a unique training record (synthpop's rm.replicated.uniques rule)."""

import numpy as np
import pandas as pd
import pytest

from cohorts.evaluate_fidelity import patient_features
from cohorts.generators import get_generator
from cohorts.generators.disclosure import record_hashes, unique_record_hashes
from cohorts.schema import CohortSchema


@pytest.fixture(scope="module")
def coarse():
    """Few distinct records: three sites x an integer outcome 0..4, 60 patients (many shared, some unique)."""
    rng = np.random.default_rng(3)
    n = 60
    site = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])
    y = np.minimum(rng.poisson(np.where(site == "a", 1.0, 2.5)), 4)
    data = pd.DataFrame({"pid": np.arange(1, n + 1), "site": site, "y": y.astype(float)})
    schema = CohortSchema.from_dict({"id": "pid", "baseline": {"categorical": ["site"]},
                                     "outcome": {"type": "continuous", "value": "y"}})
    return data, schema


def _keys(frame, schema):
    f = patient_features(frame, schema)
    return [tuple(r) for r in f.astype(str).itertuples(index=False)]


def test_unique_hashes_are_the_records_seen_once(coarse):
    data, schema = coarse
    keys = pd.Series(_keys(data, schema))
    once = set(keys[~keys.duplicated(keep=False)])
    h = record_hashes(data, schema).to_numpy()
    assert len(unique_record_hashes(data, schema)) == len(once) > 0
    assert set(h[np.flatnonzero(~keys.duplicated(keep=False))]) == set(unique_record_hashes(data, schema))


def test_sample_redraws_replicated_uniques_only(coarse):
    data, schema = coarse
    train_keys = pd.Series(_keys(data, schema))
    uniques = set(train_keys[~train_keys.duplicated(keep=False)])
    shared = set(train_keys[train_keys.duplicated(keep=False)])
    g = get_generator("cart").fit(data, schema, rng=np.random.default_rng(1))
    raw = g.sample(400, rng=np.random.default_rng(2), redraw_replicated_uniques=False)
    assert sum(k in uniques for k in _keys(raw, schema)) > 0     # the raw draw does replicate uniques here
    out = g.sample(400, rng=np.random.default_rng(2))
    keys = _keys(out, schema)
    assert sum(k in uniques for k in keys) == 0
    assert out.attrs["replicated_uniques_left"] == 0
    assert out.attrs["replicated_uniques_redrawn"] >= sum(k in uniques for k in _keys(raw, schema))
    assert sum(k in shared for k in keys) > 0                    # shared records are not disclosive: kept
    assert out[schema.id].tolist() == raw[schema.id].tolist()    # same ids in the same order
    again = g.sample(400, rng=np.random.default_rng(2))
    pd.testing.assert_frame_equal(out, again)


def test_longitudinal_patients_are_replaced_whole():
    rng = np.random.default_rng(5)
    rows = []
    for pid in range(1, 41):
        arm = rng.choice(["x", "y"])
        for t in range(rng.integers(1, 4)):
            rows.append({"pid": pid, "arm": arm, "month": float(t), "v": float(rng.integers(0, 3))})
    data = pd.DataFrame(rows)
    schema = CohortSchema.from_dict({"id": "pid", "baseline": {"categorical": ["arm"]},
                                     "outcome": {"type": "longitudinal", "visit": "month", "value": "v"}})
    g = get_generator("copula").fit(data, schema, rng=np.random.default_rng(1))
    out = g.sample(300, rng=np.random.default_rng(4))
    train_keys = pd.Series(_keys(data, schema))
    uniques = set(train_keys[~train_keys.duplicated(keep=False)])
    assert out.attrs["replicated_uniques_left"] == 0
    assert not any(k in uniques for k in _keys(out, schema))
    assert out[schema.id].nunique() == 300
    ids = out[schema.id].to_numpy()
    assert (pd.unique(ids) == np.array(sorted(pd.unique(ids)))).all()   # patients still in id order
    assert not out.duplicated([schema.id, schema.outcome.visit]).any()
