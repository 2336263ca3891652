"""Property: a malformed schema (TOML text, file or dict) raises only a WorkbenchError with a message.

Seeds: examples/va_lung_schema.toml and the schemas of the built-in cohorts, mutated like the scenarios;
plus random TOML-ish text, given as text and as a file.
"""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import pytest
from fuzz_support import mutate, toml_dumps, values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohorts.builtin import available_builtins, load_builtin
from cohorts.errors import InvalidDataError, WorkbenchError
from cohorts.schema import CohortSchema

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [tomllib.loads((ROOT / "examples" / "va_lung_schema.toml").read_text(encoding="utf-8"))]
SEEDS += [load_builtin(b.name).schema.to_dict() for b in available_builtins()]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated_schemas(draw) -> dict:
    d = tomllib.loads(toml_dumps(draw(st.sampled_from(SEEDS))))   # a deep copy
    return mutate(draw, d, ("delete", "rename", "replace", "number", "duplicate"))


def _only_workbench_errors(fn) -> None:
    try:
        schema = fn()
    except WorkbenchError as exc:
        assert str(exc).strip()
    else:   # what is accepted is a schema that writes and reads back to itself
        assert CohortSchema.from_toml(schema.to_toml()) == schema


@FUZZ
@given(mutated_schemas())
def test_mutated_schema_dicts(d):
    _only_workbench_errors(lambda: CohortSchema.from_dict(d, source="fuzz"))


@FUZZ
@given(mutated_schemas().map(toml_dumps))
def test_mutated_schema_toml_text(text):
    _only_workbench_errors(lambda: CohortSchema.from_toml(text))


@settings(FUZZ, max_examples=60)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                 mutated_schemas().map(toml_dumps).map(lambda t: t[: len(t) // 2])))
def test_random_schema_files(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "schema.toml"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        _only_workbench_errors(lambda: CohortSchema.from_toml(path))
        _only_workbench_errors(lambda: CohortSchema.from_toml(text + "\n"))


@settings(FUZZ, max_examples=60)
@given(st.one_of(values, st.lists(values, max_size=3)))
def test_schema_from_anything_that_is_not_a_table(value):
    _only_workbench_errors(lambda: CohortSchema.from_dict(value))


@pytest.mark.parametrize("where", [".", "/"])
def test_schema_path_that_is_a_folder_or_unreadable(where):
    with pytest.raises(InvalidDataError, match="schema file"):
        CohortSchema.from_toml(where)
