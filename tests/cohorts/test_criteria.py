"""Eligibility criteria: grammar, normalized text, rejected constructs (message + caret), types, missing values.

Expected values are computed independently with plain pandas/numpy masks on small hand-made frames.
"""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest

from cohorts.criteria import ALLOWED, Criteria, CriteriaError, parse_criteria
from cohorts.errors import InvalidScenarioError


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    age = rng.normal(55, 15, n).round(1)
    age[::17] = np.nan
    sex = pd.Series(rng.choice(["Female", "Male"], n), dtype="str")
    sex[::23] = None
    return pd.DataFrame({
        "age": age, "sex": sex, "x": rng.integers(-5, 6, n), "y": rng.normal(size=n),
        "months since onset": rng.uniform(0, 48, n),
        "grade": pd.Categorical(rng.choice(["I", "II", "III"], n)),
        "stage": pd.Categorical(rng.choice([1, 2, 3], n)),
        "flag": rng.random(n) < 0.3,
        "count": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 4, n)), dtype="Int64"),
    })


def _ev(text: str, frame: pd.DataFrame) -> np.ndarray:
    return parse_criteria(text).evaluate(frame)


def _caret_col(message: str) -> int:
    """0-based column of the caret in an error message (the caret line is indented by 4)."""
    line = next(ln for ln in message.splitlines() if ln.strip() == "^")
    return len(line) - 5


# ------------------------------------------------------------------------------------------- grammar
def test_and_binds_tighter_than_or(frame):
    a, b, c = frame["x"] > 0, frame["y"] > 0, frame["flag"]
    assert np.array_equal(_ev("x > 0 or y > 0 and flag", frame), (a | (b & c)).to_numpy())
    assert np.array_equal(_ev("(x > 0 or y > 0) and flag", frame), ((a | b) & c).to_numpy())
    assert not np.array_equal(_ev("x > 0 or y > 0 and flag", frame), _ev("(x > 0 or y > 0) and flag", frame))
    assert np.array_equal(_ev("not x > 0 and y > 0", frame), (~a & b).to_numpy())


def test_arithmetic_precedence_and_unary_minus(frame):
    x, y = frame["x"].to_numpy(float), frame["y"].to_numpy()
    assert np.array_equal(_ev("x + y * 2 > 1", frame), x + y * 2 > 1)
    assert np.array_equal(_ev("(x + y) * 2 > 1", frame), (x + y) * 2 > 1)
    assert np.array_equal(_ev("x - y - 1 > 0", frame), (x - y) - 1 > 0)
    assert np.array_equal(_ev("x - (y - 1) > 0", frame), x - (y - 1) > 0)
    assert np.array_equal(_ev("x / 2 / 2 >= 1", frame), x / 4 >= 1)
    assert np.array_equal(_ev("-x < -2", frame), -x < -2)
    assert np.array_equal(_ev("--x == x", frame), np.ones(len(frame), bool))
    assert np.array_equal(_ev("1e1 > x * 5", frame), 10 > x * 5)
    assert np.array_equal(_ev(".5 < y", frame), 0.5 < y)


def test_chained_comparison_means_and(frame):
    age = frame["age"]
    assert np.array_equal(_ev("18 <= age <= 75", frame), ((age >= 18) & (age <= 75)).to_numpy())
    assert np.array_equal(_ev("40 < age > 60", frame), ((age > 40) & (age > 60)).to_numpy())
    assert np.array_equal(_ev("0 < x < 3 != x", frame), ((frame.x > 0) & (frame.x < 3)).to_numpy())


def test_in_lists(frame):
    assert np.array_equal(_ev("grade in ['I', 'III']", frame), frame["grade"].isin(["I", "III"]).to_numpy())
    notin = frame["sex"].notna() & ~frame["sex"].isin(["Male"])
    assert np.array_equal(_ev("sex not in ['Male',]", frame), notin.to_numpy())
    assert np.array_equal(_ev("x in [-1, 2, 3.0]", frame), frame["x"].isin([-1, 2, 3]).to_numpy())
    assert np.array_equal(_ev("stage in [1, 2]", frame), frame["stage"].isin([1, 2]).to_numpy())
    assert np.array_equal(_ev("flag in [true]", frame), frame["flag"].to_numpy())
    assert np.array_equal(_ev("not x in [0]", frame), (frame["x"] != 0).to_numpy())


def test_backticks_quotes_keywords_and_literals(frame):
    m = frame["months since onset"]
    assert np.array_equal(_ev("`months since onset` <= 24", frame), (m <= 24).to_numpy())
    assert np.array_equal(_ev('sex == "Female" AND age > 50', frame), _ev("sex == 'Female' and age > 50", frame))
    assert np.array_equal(_ev("flag == True", frame), _ev("flag", frame))
    assert np.array_equal(_ev("flag != false", frame), frame["flag"].to_numpy())
    weird = pd.DataFrame({"and": [1, 2], "it's": ["a'b", "c"]})
    assert list(_ev("`and` > 1", weird)) == [False, True]
    assert list(_ev(r"`it's` == 'a\'b'", weird)) == [True, False]
    assert str(parse_criteria(r"`it's` == 'a\'b' or `and` > 1")) == r"`it's` == 'a\'b' or `and` > 1"


@pytest.mark.parametrize("text, normalized", [
    ("age>=18   AND(sex=='Female' OR x<0)", "age >= 18 and (sex == 'Female' or x < 0)"),
    ("not(age < 18)", "not age < 18"),
    ("(a and b) and c", "a and b and c"),
    ("a - (b - c) > 0", "a - (b - c) > 0"),
    ("(a - b) - c > 0", "a - b - c > 0"),
    ("a * (b + c) / 2 > 1e3", "a * (b + c) / 2 > 1000.0"),
    ('x in [1,2,] or s not in ["p", "q"]', "x in [1, 2] or s not in ['p', 'q']"),
    ("(a > 1) == true", "(a > 1) == true"),
    ("- (a) < - 3", "-a < -3"),
])
def test_normalized_text_round_trips(text, normalized):
    c = parse_criteria(text)
    assert str(c) == normalized
    assert str(parse_criteria(str(c))) == normalized
    assert c.text == text


def test_normalized_text_evaluates_identically(frame):
    for text in ["x > 0 or y > 0 and flag", "not (age > 60 or sex == 'Male')", "x - (x - 3) * -1 > y",
                 "18 <= age <= 75 and `months since onset` / 2 < 10", "(flag == true) != (x > 0)"]:
        c = parse_criteria(text)
        assert np.array_equal(c.evaluate(frame), parse_criteria(str(c)).evaluate(frame)), text


def test_columns_clauses_and_frozen():
    c = parse_criteria("alsfrs_r >= 30 and months_since_onset <= 24 and (site == 'Bulbar' or age < 40)")
    assert c.columns == ("alsfrs_r", "months_since_onset", "site", "age")
    assert [str(k) for k in c.clauses()] == ["alsfrs_r >= 30", "months_since_onset <= 24",
                                            "site == 'Bulbar' or age < 40"]
    assert parse_criteria("a > 1 or b > 1").clauses()[0] is not None
    assert len(parse_criteria("a > 1 or b > 1").clauses()) == 1
    with pytest.raises(AttributeError):
        c.text = "x"  # frozen
    assert isinstance(c, Criteria) and parse_criteria(c) is c


# ------------------------------------------------------------------------------------------- rejected
@pytest.mark.parametrize("text, pos, fragment", [
    ("__import__('os')", 0, "dunder names"),
    ("age.__class__", 3, "attribute access"),
    ("age.real > 3", 3, "attribute access"),
    ("f(x)", 1, "function calls are not allowed"),
    ("age > abs(x)", 9, "function calls are not allowed"),
    ("x[0] > 1", 1, "indexing"),
    ("lambda x: x", 0, "`lambda` is not allowed"),
    ("age > 1; age < 2", 7, "`;` is not allowed"),
    ("age = 30", 4, "assignment"),
    ("age > 1 && x", 8, "write `and`"),
    ("age > 1 || x", 8, "write `or`"),
    ("!flag", 0, "write `not`"),
    ("x ** 2 > 1", 2, "powers"),
    ("x in {1, 2}", 5, "braces"),
    ("import os", 0, "`import` is not allowed"),
    ("age > 1 if x else 2", 8, "`if` is not allowed"),
    ("[1, 2]", 0, "may only follow `in`"),
    ("age > 1)", 7, "unexpected `)`"),
])
def test_rejected_constructs_explain_with_caret_and_allowed_list(text, pos, fragment):
    with pytest.raises(CriteriaError) as info:
        parse_criteria(text)
    e = info.value
    assert isinstance(e, InvalidScenarioError)
    assert e.position == pos
    assert fragment in str(e)
    assert f"Allowed: {ALLOWED}" in str(e)
    assert _caret_col(str(e)) == pos
    assert f"    {text}" in str(e).splitlines()


@pytest.mark.parametrize("text, pos, fragment", [
    ("", 0, "empty"),
    ("(age > 1", 8, "expected `)`"),
    ("age in (1, 2)", 7, "needs a list in square brackets"),
    ("age in []", 7, "the list is empty"),
    ("age in [1, 'a']", 7, "mixes a number and text"),
    ("age in [x]", 8, "must be literals"),
    ("age in [1 2]", 10, "expected `,` or `]`"),
    ("age not 3", 4, "must be followed by `in`"),
    ("'abc", 0, "unterminated text"),
    ("age > 1abc", 6, "malformed number"),
    ("age > 30\n  and x.y", 16, "attribute access"),
])
def test_syntax_errors_point_at_the_problem(text, pos, fragment):
    with pytest.raises(CriteriaError) as info:
        parse_criteria(text)
    assert info.value.position == pos
    assert fragment in str(info.value)
    assert _caret_col(str(info.value)) == pos - (text.rfind("\n", 0, pos) + 1)


def test_multiline_error_names_line_and_column():
    with pytest.raises(CriteriaError, match=r"line 2, column 9") as info:
        parse_criteria("age > 30\nand sex = 'F'")
    assert "    and sex = 'F'" in str(info.value)


def test_no_eval_exec_or_compile_is_ever_called(frame, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("eval/exec/compile called")
    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, boom)
    monkeypatch.setattr(pd, "eval", boom)
    monkeypatch.setattr(pd.DataFrame, "eval", boom)
    monkeypatch.setattr(pd.DataFrame, "query", boom)
    c = parse_criteria("18 <= age <= 75 and sex in ['Female'] or not x * 2 - y > 1 and flag")
    assert c.evaluate(frame).dtype == bool


def test_deep_nesting_and_huge_text_are_refused():
    with pytest.raises(CriteriaError, match="nests deeper"):
        parse_criteria("(" * 500 + "x > 1" + ")" * 500)
    with pytest.raises(CriteriaError, match="nests deeper"):
        parse_criteria("-" * 500 + "x > 1")
    with pytest.raises(CriteriaError, match="nests deeper"):
        parse_criteria("x" + " + x" * 3000 + " > 1")
    with pytest.raises(InvalidScenarioError, match="at most 20,000 characters"):
        parse_criteria("x > 1 and " * 3000 + "x > 1")
    with pytest.raises(InvalidScenarioError, match="must be text"):
        parse_criteria(42)


# ------------------------------------------------------------------------------------------- columns, types
def test_unknown_columns_are_all_listed_with_closest_names(frame):
    c = parse_criteria("agee > 1 and Sex == 'Female' and zzz_qqq < 3")
    with pytest.raises(CriteriaError) as info:
        c.check(frame.columns)
    msg = str(info.value)
    assert "3 problems" in msg
    assert "unknown column `agee`; did you mean `age`" in msg
    assert "unknown column `Sex`; did you mean `sex`?" in msg
    assert "unknown column `zzz_qqq`; available columns: age, sex, x" in msg
    assert info.value.positions == [0, 13, 33]
    with pytest.raises(CriteriaError, match="did you mean `age`"):
        c.evaluate(frame)
    assert parse_criteria("age > 1").check(["age"]).columns == ("age",)


@pytest.mark.parametrize("text, pos, fragment", [
    ("sex == 1", 4, "cannot compare `sex` (text) with `1` (a number)"),
    ("age == 'old'", 4, "cannot compare `age` (a number) with `'old'` (text)"),
    ("sex < 'M'", 4, "cannot order text"),
    ("grade >= 'II'", 6, "cannot order text"),
    ("flag > false", 5, "cannot order text or true/false"),
    ("age + sex > 1", 6, "arithmetic `+` needs a number, but `sex` is text"),
    ("-sex > 1", 1, "unary `-` needs a number"),
    ("not age", 4, "`not` needs a condition (true/false), but `age` is a number; did you mean `age > 0`?"),
    ("age and sex == 'Female'", 0, "`and` needs a condition"),
    ("sex in [1, 2]", 4, "`sex` is text but the list holds a number"),
    ("age", 0, "must be a condition"),
    ("(age > 1) + 1 > 0", 1, "arithmetic `+` needs a number, but `age > 1` is a condition"),
])
def test_type_errors_are_clear(frame, text, pos, fragment):
    with pytest.raises(CriteriaError) as info:
        _ev(text, frame)
    assert fragment in str(info.value)
    assert info.value.position == pos
    with pytest.raises(CriteriaError):  # check(frame) finds it without evaluating
        parse_criteria(text).check(frame)


def test_literal_only_type_errors_are_found_at_parse_time():
    for text in ["'a' < 3", "age + 1", "'text'", "3 and x > 1", "x > 1 or 'a' + 1 > 2"]:
        with pytest.raises(CriteriaError):
            parse_criteria(text)


def test_column_types(frame):
    assert np.array_equal(_ev("stage >= 2", frame), (frame["stage"].astype(int) >= 2).to_numpy())
    cnt = frame["count"]
    assert np.array_equal(_ev("count >= 2", frame), (cnt.fillna(-1) >= 2).to_numpy())
    assert np.array_equal(_ev("grade == 'II'", frame), (frame["grade"] == "II").to_numpy())
    mixed = pd.DataFrame({"m": pd.Series([1, "a", None], dtype=object)})
    with pytest.raises(CriteriaError, match="mixes types"):
        _ev("m == 1", mixed)
    assert _ev("age > 1", frame.iloc[:0]).shape == (0,)
    na = pd.DataFrame({"s": pd.Categorical([1, 2, None]), "b": pd.array([True, None, False], dtype="boolean")})
    assert list(_ev("s >= 2", na)) == [False, True, False]
    assert list(_ev("b", na)) == [True, False, False] and list(_ev("not b", na)) == [False, False, True]


# ------------------------------------------------------------------------------------------- missing values
def test_missing_values_are_never_eligible():
    df = pd.DataFrame({"age": [20.0, np.nan, 70.0, np.nan], "sex": ["Female", "Female", None, "Male"],
                       "w": [1.0, 2.0, 0.0, 4.0]})
    assert list(_ev("age >= 18", df)) == [True, False, True, False]
    assert list(_ev("age < 18", df)) == [False, False, False, False]
    assert list(_ev("not (age < 18)", df)) == [True, False, True, False]  # unknown stays unknown under not
    assert list(_ev("age != 20", df)) == [False, False, True, False]
    assert list(_ev("sex != 'Male'", df)) == [True, True, False, False]
    assert list(_ev("sex not in ['Male']", df)) == [True, True, False, False]
    assert list(_ev("age >= 18 or sex == 'Female'", df)) == [True, True, True, False]  # unknown or true
    assert list(_ev("age >= 18 and sex == 'Female'", df)) == [True, False, False, False]
    # false and unknown is false, true and unknown is unknown
    assert list(_ev("not (age >= 18 and sex == 'Male')", df)) == [True, True, False, False]
    assert list(_ev("age / w > 1", df)) == [True, False, False, False]  # division by zero is missing
    assert list(_ev("10 < age < 100", df)) == [True, False, True, False]


def test_chain_with_a_false_link_is_false_even_if_another_is_unknown():
    df = pd.DataFrame({"a": [5.0, 5.0], "b": [np.nan, 1.0]})
    assert list(_ev("not (a < 3 < b)", df)) == [True, True]  # a < 3 is false: the chain is false, not unknown


# ------------------------------------------------------------------------------------------- report helpers
def test_pass_rates_describe_and_value_hints(frame):
    c = parse_criteria("age >= 40 and sex == 'female' and x > -5")
    rates = c.pass_rates(frame)
    assert [r for r, _ in rates] == ["sex == 'female'", "age >= 40", "x > -5"]
    assert rates[0][1] == 0.0
    assert rates[1][1] == pytest.approx(float((frame["age"] >= 40).mean()))
    hints = c.value_hints(frame)
    assert len(hints) == 1 and hints[0].startswith("'female' never occurs in `sex`; did you mean `Female`")
    text = c.describe(frame)
    assert "all of these hold" in text and "  - age >= 40" in text and "not eligible" in text
    assert "Overall 0.0% of 400 rows" in text
    assert parse_criteria("x > 1").describe().startswith("Eligible when this holds:")
