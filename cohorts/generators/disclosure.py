"""Statistical disclosure control of released synthetic patients: no replicated uniques.

A training patient whose record (baseline covariates plus outcome summaries, exactly as
:func:`cohorts.evaluate_fidelity.patient_features` builds it for the privacy metrics) occurs once in the
training data is a *unique*; a synthetic patient identical to a unique *replicates* it and could disclose that
patient. :meth:`CohortGenerator.sample` redraws such synthetic patients (the rule of synthpop's
``sdc(rm.replicated.uniques = TRUE)``; Nowok, Raab & Dibben, J Stat Softw 2016; Raab, Nowok & Dibben, J Priv
Confid 2016). Records shared by two or more training patients are not disclosive and are kept, so a table of a
few categorical columns is not distorted.

The generator keeps only 64-bit hashes of the unique records (``pandas.util.hash_pandas_object``), not the
records. Trial simulation draws latent patients and is not affected; this applies to released samples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["record_hashes", "unique_record_hashes", "MAX_REDRAW_ROUNDS"]

#: rounds of redrawing before the remaining replicated uniques are kept (and counted in ``frame.attrs``)
MAX_REDRAW_ROUNDS = 20


def record_hashes(data: pd.DataFrame, schema) -> pd.Series:
    """One 64-bit hash per patient (index: patient id, in order of first appearance) of its whole record."""
    from cohorts.evaluate_fidelity import patient_features  # lazy: keeps generator imports light
    features = patient_features(data, schema)
    return pd.Series(pd.util.hash_pandas_object(features, index=False).to_numpy(np.uint64), index=features.index)


def unique_record_hashes(data: pd.DataFrame, schema) -> np.ndarray:
    """Sorted hashes of the records that occur exactly once in ``data``."""
    h = record_hashes(data, schema).to_numpy()
    values, counts = np.unique(h, return_counts=True)
    return values[counts == 1]


def replicated(frame: pd.DataFrame, schema, uniques: np.ndarray) -> np.ndarray:
    """Ids of the patients in ``frame`` whose record is one of the training ``uniques``."""
    h = record_hashes(frame, schema)
    return h.index.to_numpy()[np.isin(h.to_numpy(), uniques)]


def redraw_replicated_uniques(generator, frame: pd.DataFrame, *, rng: np.random.Generator, conditions=None):
    """``(frame, redrawn, left)``: ``frame`` with every patient replicating a training unique replaced by a new
    draw (same ids, in the same order); ``redrawn`` counts replacements, ``left`` those still replicating
    after :data:`MAX_REDRAW_ROUNDS` rounds."""
    uniques = getattr(generator, "unique_record_hashes_", None)
    if uniques is None or not len(uniques) or not len(frame):
        return frame, 0, 0
    schema = generator.schema_
    pid = schema.id
    redrawn = 0
    bad = replicated(frame, schema, uniques)
    if not len(bad):
        return frame, 0, 0
    order = {v: i for i, v in enumerate(pd.unique(frame[pid]))}
    for _ in range(MAX_REDRAW_ROUNDS):
        if not len(bad):
            break
        redrawn += len(bad)
        new = generator._realize(generator.draw(len(bad), rng=rng, conditions=conditions), rng=rng)
        new_ids = pd.unique(new[pid])
        rename = dict(zip(new_ids, bad))
        new[pid] = new[pid].map(rename).astype(frame[pid].dtype)
        still = replicated(new, schema, uniques)
        frame = pd.concat([frame[~frame[pid].isin(bad)], new], ignore_index=True)
        bad = still
    frame = (frame.assign(_order=frame[pid].map(order)).sort_values("_order", kind="stable")
             .drop(columns="_order").reset_index(drop=True))
    return frame, redrawn, len(bad)
