"""Property: ``insilico power <malformed scenario> --out DIR`` exits with status 2 and leaves nothing behind: no
DIR, and no temporary sibling next to it (``cli.main`` called in-process, as in tests/test_cli.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fuzz_support import mutated_scenarios, spliced_texts
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cli import main
from cohorts.errors import WorkbenchError
from trials.scenario import parse_scenario_text

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])


def _is_malformed(text: str, folder: Path) -> bool:
    try:
        parse_scenario_text(text, base_dir=folder)
    except WorkbenchError:
        return True
    return False


def _power_in_a_fresh_folder(text: str, capsys, *, only_malformed: bool = True) -> None:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        assume(not only_malformed or _is_malformed(text, folder))   # a valid mutation would start a real run
        path = folder / "scenario.toml"
        path.write_text(text, encoding="utf-8")
        out = folder / "run"
        status = main(["power", str(path), "--out", str(out), "--quiet", "--replicates", "10"])
        captured = capsys.readouterr()
        assert status == 2, captured.err
        assert "insilico: error:" in captured.err
        assert not out.exists()
        assert sorted(p.name for p in folder.iterdir()) == ["scenario.toml"]


@FUZZ
@given(st.one_of(mutated_scenarios(), spliced_texts()))
def test_power_on_a_malformed_scenario_exits_2_and_writes_nothing(capsys, text):
    _power_in_a_fresh_folder(text, capsys)


@settings(FUZZ, max_examples=10)
@given(st.binary(max_size=200).map(lambda b: b.decode("utf-8", errors="replace")))
def test_power_on_random_text_exits_2_and_writes_nothing(capsys, text):
    _power_in_a_fresh_folder(text, capsys, only_malformed=False)


def test_power_on_data_that_fails_after_parsing_exits_2_and_writes_nothing(tmp_path, capsys):
    """The scenario parses but its data file does not fit the schema: the error comes from loading, still
    before anything is written."""
    scenario = (Path(__file__).resolve().parents[2] / "examples" / "va_lung_tte.toml").read_text(encoding="utf-8")
    scenario = scenario.replace('builtin = "va-lung"', 'data = "lung.csv"\nschema = "lung.schema.toml"')
    (tmp_path / "lung.csv").write_text("patient_id,time_days,death\n1,10,1\n1,20,2\n", encoding="utf-8")
    (tmp_path / "lung.schema.toml").write_text('id = "patient_id"\n[outcome]\ntype = "tte"\ntime = "time_days"\n'
                                               'event = "death"\n', encoding="utf-8")
    (tmp_path / "s.toml").write_text(scenario, encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    status = main(["power", str(tmp_path / "s.toml"), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2
    assert "not 0 or 1" in err and "more than one row" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
