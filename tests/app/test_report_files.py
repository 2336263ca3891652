"""The Report page's downloads, built without streamlit: the raw-data zip and the whole-run zip of a run
directory hold exactly the files on disk, byte for byte, and the unzipped run reproduces."""

from __future__ import annotations

import contextlib
import io
import zipfile
from pathlib import Path

import pytest

from analysis.run_reader import open_run_dir
from app_pages._report_files import RAW_PARTS, raw_zip, run_label, run_zip
from cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("r") / "run"
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main(["power", str(ROOT / "examples" / "als_slope.toml"), "--replicates", "10", "--out", str(d),
                     "--quiet", "--no-evaluation"]) == 0
    return open_run_dir(d)


def _members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {n: z.read(n) for n in z.namelist()}


def test_raw_zip_holds_manifest_raw_and_results(run):
    got = _members(raw_zip(run))
    want = {f"run/{p.relative_to(run.path).as_posix()}": p.read_bytes() for p in run.path.rglob("*")
            if p.is_file() and p.relative_to(run.path).parts[0] in RAW_PARTS}
    assert got == want and "run/raw/replicates.parquet" in got


def test_run_zip_unzips_to_a_run_directory_that_reproduces(run, tmp_path):
    with zipfile.ZipFile(io.BytesIO(run_zip(run))) as z:
        z.extractall(tmp_path)
    copy = open_run_dir(tmp_path / "run")
    assert copy.verify() == []
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["reproduce", str(copy.path), "--quiet"]) == 0, out.getvalue()


def test_run_label_names_time_kind_and_title(run):
    label = run_label(run)
    assert "UTC · power · ALS phase 2" in label and label[:4].isdigit()
