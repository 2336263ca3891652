"""The `insilico` command: JSON contract, errors with exit status 2, the installed entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_power_json_on_the_als_example(capsys):
    rc = main(["power", str(ROOT / "examples" / "als_slope.toml"), "--json", "--replicates", "300", "--quiet"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_total"] == [60, 120, 180, 240]
    assert out["replicates"] == 300 and out["seed"] == 20261122
    power = out["power"]
    assert len(power) == 4 and all(0 <= p <= 1 for p in power)
    # power rises with N (a 25 % slowing at N = 60 vs 240 differs by far more than MC error at 300 replicates)
    assert power[-1] > power[0] + 0.1
    assert all(lo <= p <= hi for lo, p, hi in zip(out["power_ci_low"], power, out["power_ci_high"]))
    # type I error pooled over 4 x 300 null trials, within a 4-SD binomial band of alpha
    assert abs(out["type1_error"] - 0.05) <= 4 * (0.05 * 0.95 / 1200) ** 0.5


def test_same_seed_same_json(capsys):
    args = ["power", str(ROOT / "examples" / "va_lung_tte.toml"), "--json", "--replicates", "100", "--quiet"]
    main(args)
    first = json.loads(capsys.readouterr().out)
    main(args)
    second = json.loads(capsys.readouterr().out)
    first.pop("elapsed_s"), second.pop("elapsed_s")
    assert first == second


def test_bad_scenario_exits_2_with_key_path(tmp_path, capsys):
    bad = (ROOT / "examples" / "als_slope.toml").read_text().replace("per_month", "per_mont")
    f = tmp_path / "bad.toml"
    f.write_text(bad)
    assert main(["power", str(f), "--json"]) == 2
    err = capsys.readouterr()
    assert err.out == ""
    assert "dropout.per_mont: unknown key (did you mean 'per_month'?)" in err.err


def test_installed_console_script_runs():
    exe = Path(sys.executable).parent / "insilico"
    if not exe.exists():
        pytest.skip("package not installed with its console script (run `make test`)")
    proc = subprocess.run([str(exe), "cohorts"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr
    assert "als-natural-history" in proc.stdout and "va-lung" in proc.stdout


def test_progress_bar_on_stderr_while_stdout_stays_pure_json(capsys):
    assert main(["power", str(ROOT / "examples" / "als_slope.toml"), "--json", "--replicates", "20"]) == 0
    out = capsys.readouterr()
    json.loads(out.out)                           # exactly one JSON object on stdout
    assert "[" in out.err and "100%" in out.err   # the bar reached the end, on stderr
    assert main(["power", str(ROOT / "examples" / "als_slope.toml"), "--json", "--replicates", "20",
                 "--quiet"]) == 0
    assert capsys.readouterr().err == ""
