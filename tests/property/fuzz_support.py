"""Shared pieces of the property tests: a small TOML writer and hypothesis strategies for malformed scenarios.

The example scenarios (examples/*.toml) are the seeds: parsed, mutated (keys deleted or renamed, values replaced
by wrong types, huge or negative numbers, NaN, empty or unicode strings) and written back as TOML, or spliced
as text.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

from hypothesis import strategies as st

from cohorts.schema import toml_literal

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCENARIOS = {p.name: p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.toml"))
             if p.name not in ("sweep_grid.toml", "va_lung_schema.toml")}


# --------------------------------------------------------------------------- a small TOML writer
def toml_value(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_literal(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return toml_literal(v)


def toml_dumps(d: dict) -> str:
    """Every top-level key as ``key = value`` (tables inline): valid TOML for any nesting."""
    return "\n".join(f"{toml_literal(str(k))} = {toml_value(v)}" for k, v in d.items()) + "\n"


# --------------------------------------------------------------------------- strategies
NASTY_TEXT = ["", " ", "\t", "é", "😀", "名前", "nan", "inf", "-1", "1e999", "../../etc/passwd", "/dev/zero", ".",
              "slope", "logrank", "hazard_ratio", "age < 60", "__import__('os')", "\u202e", "a" * 300]
NASTY_NUMBERS = [0, -1, -10**6, 2**31, 2**53 + 1, 2**63 - 1, -2**63, 0.0, -0.0, 1e-300, 5e-324, 1e308, -1e308,
                 float("nan"), float("inf"), -float("inf"), 0.5, 1.5, 1e6]
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NASTY_NUMBERS),
    st.text(max_size=12),
    st.sampled_from(NASTY_TEXT),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
keys = st.one_of(st.text(max_size=12), st.sampled_from(["seed", "title", "cohort", "arms", "power", "n_total",
                                                        "builtin", "data", "schema", "effect", "analysis", "x"]))


def paths_of(node, prefix=()):
    """Every (container path, key) of a nested dict/list structure."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield prefix, k
        yield from paths_of(v, prefix + (k,))


def at_path(root, path):
    for k in path:
        root = root[k]
    return root


def mutate(draw, d: dict, ops=("delete", "rename", "replace", "replace", "number")) -> dict:
    """Apply 1 to 3 random edits to the nested dict ``d`` in place: delete a key, rename it, replace its value
    (any value or a nasty number), or ``duplicate`` a list's first item (a column with two roles)."""
    for _ in range(draw(st.integers(1, 3))):
        paths = list(paths_of(d))
        if not paths:
            break
        path, key = draw(st.sampled_from(paths))
        parent = at_path(d, path)
        op = draw(st.sampled_from(list(ops)))
        if op == "delete":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(keys)] = parent.pop(key)
        elif op == "number":
            parent[key] = draw(st.sampled_from(NASTY_NUMBERS))
        elif op == "duplicate" and isinstance(parent, list) and parent:
            parent.append(parent[0])
        else:
            parent[key] = draw(values)
    return d


@st.composite
def mutated_scenarios(draw) -> str:
    name = draw(st.sampled_from(sorted(SCENARIOS)))
    return toml_dumps(mutate(draw, tomllib.loads(SCENARIOS[name])))


@st.composite
def spliced_texts(draw) -> str:
    text = SCENARIOS[draw(st.sampled_from(sorted(SCENARIOS)))]
    at = draw(st.integers(0, len(text)))
    cut = draw(st.integers(0, 40))
    insert = draw(st.one_of(st.text(max_size=10), st.sampled_from(["=", "[", "]]", "{", "\"", "\n[[arms]]\n",
                                                                   "\nseed = -1\n", "nan", "\x00"])))
    return text[:at] + insert + text[at + cut:]


toml_ish = st.lists(st.one_of(
    st.text(alphabet="[]{}=\"'.,#\n abcdefgnrs0123456789-+_eE", max_size=30),
    st.sampled_from([line for text in SCENARIOS.values() for line in text.splitlines()]),
), max_size=25).map("\n".join)
