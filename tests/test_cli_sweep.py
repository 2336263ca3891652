"""`insilico sweep`: the run directory, parquet round trip, the same numbers in-process, on a fresh local
cluster and on an existing one, and user errors with exit status 2 (called through `cli.main`)."""

import contextlib
import io
import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from analysis.sweep import SWEEP_COLUMNS
from analysis.sweep_grid import load_grid
from cli import main
from trials.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = str(ROOT / "examples" / "als_slope.toml")


def run(argv: list[str]) -> int:
    """The command as `insilico` runs it: user errors print and exit 2."""
    return main(argv)


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory):
    f = tmp_path_factory.mktemp("grid") / "grid.toml"
    f.write_text("[grid]\neffect = [0.5, 0.25]\nn_total = [40]\n")
    return f


def sweep(grid_file, out, *extra):
    return run(["sweep", SCENARIO, "--grid", str(grid_file), "--out", str(out), "--replicates", "20", "--quiet",
                *extra])


@pytest.fixture(scope="module")
def printed_json(grid_file, tmp_path_factory):
    """(output directory, what --json printed) of one in-process run."""
    out = tmp_path_factory.mktemp("in_process")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert sweep(grid_file, out, "--workers", "0", "--json") == 0
    return out, stdout.getvalue()


@pytest.fixture(scope="module")
def in_process(printed_json):
    return printed_json[0]


def test_writes_a_run_directory_and_the_parquet_round_trips(in_process, capsys):
    assert {"manifest.json", "scenario.toml", "grid.toml", "results/summary.json", "results/table.csv",
            "raw/sweep.parquet", "generator/model.pkl", "figures/sweep_power.json"} <= {
        p.relative_to(in_process).as_posix() for p in in_process.rglob("*") if p.is_file()}
    table = pd.read_parquet(in_process / "raw" / "sweep.parquet")
    assert list(table.columns) == list(SWEEP_COLUMNS) and len(table) == 2
    assert table["effect"].tolist() == [0.25, 0.5] and (table["n_total"] == 40).all()
    assert (table["replicates"] == 20).all() and (table["analysis"] == "slope").all()
    # the CSV carries the same numbers (shortest round-trip float repr), the JSON the same cells
    pd.testing.assert_frame_equal(pd.read_csv(in_process / "results" / "table.csv"), table, check_exact=True)
    summary = json.loads((in_process / "results" / "summary.json").read_text())
    pd.testing.assert_frame_equal(pd.DataFrame(summary["cells"]), table, check_dtype=False, check_exact=True)
    assert (summary["seed"], summary["title"]) == (20261122, "ALS phase 2, 6-month ALSFRS-R slope")
    assert summary["scheduler"] == "in-process" and summary["replicates"] == 20
    assert summary["grid"]["dropout_per_month"] == [0.02]  # kept from the scenario


def test_json_prints_one_object_equal_to_summary_json(printed_json):
    out, printed = printed_json
    assert printed.count("\n") == 1  # one line, one object
    assert json.loads(printed) == json.loads((out / "results" / "summary.json").read_text())


def test_table_printed_without_json(grid_file, tmp_path, capsys):
    assert sweep(grid_file, tmp_path, "--workers", "0") == 0
    out = capsys.readouterr().out
    assert out.startswith("ALS phase 2, 6-month ALSFRS-R slope\n")
    assert "type1_error" in out and len(out.strip().splitlines()) == 5  # title, settings, header, 2 cells


def numbers(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "raw" / "sweep.parquet").drop(columns="seconds")


def test_fresh_local_cluster_gives_the_same_numbers(grid_file, in_process, tmp_path):
    assert sweep(grid_file, tmp_path / "out", "--workers", "1") == 0
    pd.testing.assert_frame_equal(numbers(tmp_path / "out"), numbers(in_process), check_exact=True)
    summary = json.loads((tmp_path / "out" / "results" / "summary.json").read_text())
    assert summary["scheduler"].startswith("tcp://") and summary["workers_available"] == 1


def test_existing_scheduler_gives_the_same_numbers(grid_file, in_process, tmp_path):
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster:
        assert sweep(grid_file, tmp_path / "out", "--scheduler", cluster.scheduler_address) == 0
        assert len(cluster.scheduler.workers) == 2  # the command left the cluster running
    pd.testing.assert_frame_equal(numbers(tmp_path / "out"), numbers(in_process), check_exact=True)
    assert json.loads((tmp_path / "out" / "results" / "summary.json").read_text())["workers_available"] == 2


def test_bad_grid_exits_2_with_the_key_path(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\nn_totl = [40]\n")
    assert sweep(bad, tmp_path / "out") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not (tmp_path / "out").exists()
    assert "grid.n_totl: unknown key (did you mean 'n_total'?)" in captured.err


@pytest.mark.parametrize("extra,message", [
    (["--scheduler", "foo://x"], "--scheduler foo://x: cannot connect (unknown address scheme 'foo'"),
    (["--workers", "-1"], "--workers must be >= 0 (0 runs in this process without Dask), got -1"),
    (["--replicates", "0"], "--replicates: must be an integer in [1, 1000000], got 0"),
    (["--seed", "-3"], "--seed must be a non-negative integer, got -3"),
])
def test_bad_options_exit_2_with_a_message(grid_file, tmp_path, capsys, extra, message):
    assert sweep(grid_file, tmp_path / "out", *extra) == 2
    assert message in capsys.readouterr().err


def test_out_must_be_a_directory(grid_file, tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert sweep(grid_file, f, "--workers", "0") == 2
    assert "exists and is not an empty directory" in capsys.readouterr().err


def test_scheduler_and_workers_are_exclusive(grid_file, tmp_path):
    with pytest.raises(SystemExit) as exc:
        sweep(grid_file, tmp_path, "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786")
    assert exc.value.code == 2


def test_example_grid_fits_the_als_example():
    grid = load_grid(ROOT / "examples" / "sweep_grid.toml", load_scenario(SCENARIO))
    assert grid.n_cells == 24 and grid.effect == (0.15, 0.25, 0.35) and grid.analysis == ("ancova", "slope")
