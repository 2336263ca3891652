"""Provenance facts recorded in model cards, run manifests and reports: package versions, platform, hashes."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGES", "package_versions", "platform_info", "sha256_file", "sha256_bytes"]

#: distributions whose versions are recorded (the scientific stack the numbers depend on)
PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "scikit-learn", "torch", "opacus", "plotly", "streamlit",
            "jinja2", "insilico-workbench")


def package_versions(packages=PACKAGES) -> dict[str, str]:
    """Versions of python and ``packages``; ``"not installed"`` for a missing distribution."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def platform_info() -> dict[str, str]:
    return {"platform": platform.platform(), "machine": platform.machine(),
            "python_implementation": platform.python_implementation()}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
