"""The manifest of a run directory: what was run, on what, with which software, and what came out.

``manifest.json`` holds (format :data:`RUN_FORMAT`):

* ``kind`` (``power``, ``sample_size`` or ``sweep``), ``title``, ``command`` (the command line that made the run)
  and ``reproduce`` (the command that re-runs and verifies it);
* ``scenario``: the scenario file name in the run directory (kept verbatim) and its SHA-256; ``settings``: the
  options that changed what ran (seed, replicates, a sample-size search's target and range, a sweep's grid file);
* ``seed`` and ``streams`` (how the seed becomes the training, simulation and evaluation streams);
* ``cohort``: name, source, SHA-256 of the data as read, patients and rows; where an uploaded file was copied;
* ``generator``: family, hyperparameters, the SHA-256 of the saved model and ``fingerprint_sha256``, the SHA-256
  of 200 patients it draws with ``numpy.random.default_rng(0)`` (the same fitted model always draws the same
  patients, so the fingerprint identifies the model's behaviour, whatever pickling does with timings);
* ``versions`` (python and every package the numbers depend on) and ``platform``;
* ``started``, ``finished`` (UTC, ISO 8601) and ``elapsed_s``;
* ``summary``: the run's JSON results (what ``--json`` prints) without the wall-clock fields, and ``evaluation``:
  the generator family's fidelity / utility / privacy summary when it was evaluated;
* ``files``: the SHA-256 of every other file of the run directory, and ``manifest_sha256`` of everything above.

The hashes detect accidental or naive edits; they are not a signature.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np

from cohorts.provenance import RUN_PACKAGES, json_safe, package_versions, sha256_bytes, sha256_file

__all__ = ["RUN_FORMAT", "MANIFEST_FILE", "REPORT_FOLDER", "STREAMS", "TIMING_KEYS", "generator_fingerprint", "json_safe",
           "manifest_digest", "file_hashes", "without_timings", "platform_text", "versions"]

RUN_FORMAT = 1
MANIFEST_FILE = "manifest.json"
#: where ``insilico report`` writes by default: derived from the run, so neither hashed nor checked
REPORT_FOLDER = "report"
STREAMS = ("numpy.random.default_rng(seed).spawn(3): child 0 trains the generator, child 1 simulates the trials, "
           "child 2 splits and scores the generator evaluation")
#: JSON keys that hold wall-clock measurements or where the work ran: recorded, never compared
TIMING_KEYS = frozenset({"elapsed_s", "seconds", "fit_seconds", "scheduler", "n_workers", "workers_available",
                         "training_seconds"})
FINGERPRINT_PATIENTS = 200


def without_timings(value):
    """``value`` with every :data:`TIMING_KEYS` entry removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def generator_fingerprint(generator) -> str:
    """SHA-256 of the CSV of :data:`FINGERPRINT_PATIENTS` patients drawn with ``default_rng(0)``."""
    sample = generator.sample(FINGERPRINT_PATIENTS, rng=np.random.default_rng(0))
    return sha256_bytes(sample.to_csv(index=False, lineterminator="\n", float_format="%.17g").encode("utf-8"))


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's canonical JSON without its own ``manifest_sha256``."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return sha256_bytes(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def file_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` except the manifest and the derived reports (``report/``, what
    ``insilico report`` writes by default), by POSIX path relative to ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.as_posix() != MANIFEST_FILE and rel.parts[0] != REPORT_FOLDER:
            out[rel.as_posix()] = sha256_file(p)
    return out


def platform_text() -> str:
    return f"{platform.platform()} ({platform.machine()}), {sys.implementation.name} {platform.python_version()}"


def versions() -> dict[str, str]:
    return package_versions(RUN_PACKAGES)
