"""Cohort data in: read CSV, Parquet or XPORT files; check them against a :class:`~cohorts.schema.CohortSchema`.

::

    read_table(source, filename=)      bytes -> DataFrame        (file problems -> InvalidDataError)
    validate(df, schema, source=)      DataFrame -> clean frame  (every data problem in ONE InvalidDataError)
    load_cohort(source, schema, ...)   read_table + validate -> Cohort (sha256 of the raw file bytes)
    cohort_from_frame(df, schema, ...) validate -> Cohort

Every failure caused by the data is an :class:`~cohorts.errors.InvalidDataError` whose ``source`` is the file
name; each problem is one line saying what is wrong, where (column, rows) and how to fix it. Rows are data
rows numbered from 1: row 1 is the first row under the header (line 2 of a CSV file).

Conventions of the frame :func:`validate` returns:

* only the columns the schema names, in ``schema.columns`` order (id, numeric, categorical, outcome);
* the id column exactly as read (integers stay integers, text stays text);
* numeric baseline columns, tte time, longitudinal visit and continuous/longitudinal values: ``float64``;
* tte event and binary values: ``int64`` (0/1; ``True``/``False`` are accepted and converted);
* categorical columns: pandas' default string dtype (``str`` in pandas 3), missing values ``NaN``; numbers
  used as codes become text without a trailing ``.0`` (``1.0`` -> ``"1"``); surrounding spaces are removed;
* missing baseline values are kept (generators model them); rows of a longitudinal outcome without a value
  (missed visits) are dropped, and long data are sorted by id then visit; otherwise the row order is kept;
* a fresh ``RangeIndex``; the input frame is never modified.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
import struct
import warnings
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from cohorts.cohort import Cohort
from cohorts.errors import InvalidDataError
from cohorts.schema import CohortSchema, closest

__all__ = ["read_table", "validate", "load_cohort", "cohort_from_frame"]

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]

_PARQUET_MAGIC = b"PAR1"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
_XPORT_SUFFIXES = (".xpt",)
_XPORT_MAGIC = b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!"
_XPORT_V8_MAGIC = b"HEADER RECORD*******LIBV8   HEADER RECORD!!!!!!!"
_XPORT_MEMBER = b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!"
_SAS_SUFFIXES = (".sas7bdat",)
_UPLOAD_NAME = "uploaded data"
_SHOWN = 5  # offending rows / ids shown per problem
_SAVE_AS_UTF8 = "re-save it as UTF-8 (Excel: File > Save As > 'CSV UTF-8 (Comma delimited)')"


# =========================================================================== reading files
def read_table(source: Source, *, filename: str | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet or SAS XPORT table from a path, bytes or a binary file-like object.

    ``filename`` names uploaded bytes (for the file type and for messages). The type comes from the file
    extension; bytes starting with the Parquet magic ``PAR1`` are read as Parquet, and bytes starting with
    the XPORT library header as SAS XPORT, whatever the name. CSV must be UTF-8 (a byte-order mark is fine);
    the delimiter may be ``,``, ``;`` or a tab. XPORT (``.xpt``, version 5: the FDA/CDISC transport format)
    is read with ``pandas.read_sas``; text is decoded as UTF-8 (Latin-1 where that fails), blank text becomes
    missing, and the file must hold one dataset.
    """
    raw, name = _read_bytes(source, filename)
    return _parse_table(raw, name)


def _read_bytes(source: Source, filename: str | None) -> tuple[bytes, str]:
    """The raw bytes of ``source`` and the name used in messages."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = filename or path.name
        try:
            return path.read_bytes(), name
        except FileNotFoundError:
            raise InvalidDataError(f"file not found: {str(path)!r}; check the folder and the file name",
                                   source=name) from None
        except IsADirectoryError:
            raise InvalidDataError(f"{str(path)!r} is a folder; give the path of a CSV or Parquet file",
                                   source=name) from None
        except OSError as exc:
            raise InvalidDataError(f"could not open {str(path)!r}: {exc.strerror}; check the file's permissions",
                                   source=name) from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), filename or _UPLOAD_NAME
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        name = filename or Path(str(getattr(source, "name", "") or _UPLOAD_NAME)).name
        return bytes(data), name
    raise TypeError(f"source must be a path, bytes or a binary file object, not {type(source).__name__}")


def _parse_table(raw: bytes, name: str) -> pd.DataFrame:
    if not raw.strip():
        raise InvalidDataError("the file is empty; export the table again with a header row and one row per "
                               "patient (or visit)", source=name)
    suffix = Path(name).suffix.lower()
    if raw.startswith(_PARQUET_MAGIC) or suffix in _PARQUET_SUFFIXES:
        df = _read_parquet(raw, name)
    elif suffix in _EXCEL_SUFFIXES or raw.startswith(b"PK\x03\x04"):
        raise InvalidDataError("this is an Excel workbook, not CSV; save the sheet as 'CSV UTF-8' (or Parquet) "
                               "and upload that", source=name)
    elif raw.startswith((_XPORT_MAGIC, _XPORT_V8_MAGIC)) or suffix in _XPORT_SUFFIXES:
        df = _read_xport(raw, name)
    elif suffix in _SAS_SUFFIXES:
        raise InvalidDataError(f"SAS data sets ({suffix}) are not supported; export the data as SAS XPORT "
                               "(.xpt, e.g. with the XPORT engine or PROC COPY), CSV or Parquet", source=name)
    else:
        df = _read_csv(raw, name)
    if len(df.columns) == 0:
        raise InvalidDataError("the file has no columns; export the table again with a header row", source=name)
    if len(df) == 0:
        raise InvalidDataError(f"the file has a header ({len(df.columns)} columns) but no data rows; add one "
                               "row per patient (or visit) under the header", source=name)
    return df


# what reading damaged Parquet bytes raises (checked by fuzzing: a damaged pandas metadata block gives KeyError)
_PARQUET_ERRORS = (ValueError, OSError, TypeError, KeyError, IndexError, NotImplementedError, EOFError,
                   OverflowError)


def _read_parquet(raw: bytes, name: str) -> pd.DataFrame:
    if not raw.startswith(_PARQUET_MAGIC):
        raise InvalidDataError("the file is named like Parquet but does not start with the Parquet marker "
                               "'PAR1'; export it again as Parquet, or rename a CSV file to .csv", source=name)
    try:
        return pd.read_parquet(io.BytesIO(raw))
    except _PARQUET_ERRORS as exc:  # pyarrow's ArrowInvalid / ArrowIOError / ArrowKeyError derive from these
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidDataError(f"could not read the Parquet file ({reason}); it may be truncated or damaged: "
                               "export it again, or as CSV", source=name) from None


_IBM_ZERO_AS_READ = 2.0 ** -260
_XPORT_ERRORS = (ValueError, TypeError, KeyError, IndexError, StopIteration, EOFError, OverflowError,
                 struct.error)  # what pandas' XPORT reader raises on damaged bytes (checked by fuzzing)


def _read_xport(raw: bytes, name: str) -> pd.DataFrame:
    """A SAS XPORT v5 file (one dataset) as a frame; text decoded, blank text missing."""
    again = "export the dataset again as SAS XPORT version 5 (or as CSV)"
    if raw.startswith(_XPORT_V8_MAGIC):
        raise InvalidDataError(f"this is a SAS XPORT version 8 file, which cannot be read; {again} (the FDA "
                               "format, e.g. SAS 'libname out xport' or R haven::write_xpt(version = 5))",
                               source=name)
    if not raw.startswith(_XPORT_MAGIC):
        raise InvalidDataError("the file is named .xpt but does not start with the SAS XPORT library header; "
                               f"it is not a transport file (or it is damaged): {again}", source=name)
    if len(raw) % 80:
        raise InvalidDataError(f"the XPORT file is truncated or damaged: its size ({len(raw)} bytes) is not a "
                               f"multiple of the 80-byte record length; {again}", source=name)
    members = sum(1 for i in range(0, len(raw), 80) if raw.startswith(_XPORT_MEMBER, i))
    if members > 1:
        raise InvalidDataError(f"the XPORT file holds {members} datasets; save each dataset (ADSL, ADTTE ...) "
                               "in its own .xpt file", source=name)
    try:
        with pd.read_sas(io.BytesIO(raw), format="xport", encoding=None, iterator=True) as reader:
            # pandas counts the blank 8-byte words anywhere in the last 80-byte record as padding, which loses
            # the last row when short text values end in blanks there; count the rows from the trailing blanks
            body = len(raw[reader.record_start:].rstrip(b" "))
            reader.nobs = -(-body // reader.record_length) if reader.record_length else 0
            df = reader.read() if reader.nobs else pd.DataFrame(columns=list(reader.columns))
    except _XPORT_ERRORS as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = text if isinstance(exc, ValueError) and text else f"{type(exc).__name__} {text}".strip()
        raise InvalidDataError(f"could not read the XPORT file ({reason}); it may be truncated or damaged: "
                               f"{again}", source=name) from None
    for column in df.columns:
        if df[column].dtype == object:
            df[column] = df[column].map(_xport_text).astype("str")
        elif pd.api.types.is_float_dtype(df[column]):
            # pandas decodes an IBM zero (all zero bytes) as 2**-260 (pandas-dev/pandas#50670): restore 0
            df[column] = df[column].mask(df[column].abs() == _IBM_ZERO_AS_READ, 0.0)
    return df


def _xport_text(v):
    """Decoded, stripped text of an XPORT character value; blank -> missing."""
    if isinstance(v, bytes):
        try:
            v = v.decode("utf-8")
        except UnicodeDecodeError:
            v = v.decode("latin-1")
    if isinstance(v, str):
        v = v.strip()
        return v if v else np.nan
    return v


def _decode_text(raw: bytes, name: str) -> str:
    """UTF-8 text (a BOM is removed), or an error naming the first undecodable byte and its line."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InvalidDataError(f"the file is UTF-16 text ('Unicode Text'); {_SAVE_AS_UTF8}", source=name)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InvalidDataError(
            f"the file is not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line} cannot be read (the file is "
            f"probably Latin-1 / Windows-1252, e.g. an accented letter); {_SAVE_AS_UTF8}", source=name) from None


def _read_csv(raw: bytes, name: str) -> pd.DataFrame:
    text = _decode_text(raw, name)
    if not text.strip():
        raise InvalidDataError("the file is empty; export the table again with a header row", source=name)
    sep = _guess_delimiter(text)
    _check_header(text, sep, name)
    try:  # index_col=False: rows longer than the header must not shift the columns into an index
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            df = pd.read_csv(io.StringIO(text), sep=sep, index_col=False)
    except pd.errors.EmptyDataError:
        raise InvalidDataError("the file has no header row or data; export the table again", source=name) from None
    except pd.errors.ParserError as exc:
        raise InvalidDataError(_parser_problem(exc), source=name) from None
    except ValueError as exc:
        raise InvalidDataError(f"could not read the CSV file ({str(exc).strip().splitlines()[0]}); export it "
                               "again as plain CSV", source=name) from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):  # extra values would be dropped
        raise InvalidDataError(f"some data rows have more values than the header has column names "
                               f"({len(df.columns)}); remove the extra delimiters at the end of those rows, or name "
                               "every column in the header", source=name)
    return df


def _guess_delimiter(text: str) -> str:
    """',' unless the header line holds more ';' or tabs (European Excel exports use ';')."""
    header = text.lstrip("\r\n").splitlines()[0]
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] > counts[","] else ","


def _check_header(text: str, sep: str, name: str) -> None:
    """Blank or repeated column names would be renamed silently by pandas ('age.1'): report them."""
    try:  # newline=None: a lone '\r' ends a line too (old Mac exports), as for pandas
        header = next(csv.reader(io.StringIO(text.lstrip("\r\n"), newline=None), delimiter=sep))
    except csv.Error as exc:
        raise InvalidDataError(f"malformed CSV header ({exc}); check the quotes on the first line",
                               source=name) from None
    names = [h.strip() for h in header]
    problems = [f"column {i} of the header has no name; give every column a name"
                for i, h in enumerate(names, start=1) if not h]
    for col in sorted({h for h in names if h and names.count(h) > 1}):
        where = ", ".join(str(i) for i, h in enumerate(names, start=1) if h == col)
        problems.append(f"column name {col!r} appears more than once in the header (columns {where}); "
                        "rename the copies")
    if problems:
        raise InvalidDataError(problems, source=name)


def _parser_problem(exc: pd.errors.ParserError) -> str:
    message = str(exc).strip()
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if fields:
        expected, line, saw = fields.groups()
        return (f"malformed CSV: line {line} has {saw} fields but the header has {expected}; look on that line "
                "for an extra delimiter, or put quotes around a value that contains a comma")
    detail = message.split("C error:")[-1].strip().splitlines()[0]
    return f"malformed CSV ({detail}); check the quotes near that row (every opening quote needs a closing one)"


# =========================================================================== validating data
def validate(df: pd.DataFrame, schema: CohortSchema, *, source: str | None = None) -> pd.DataFrame:
    """Check ``df`` against ``schema`` and return a clean copy (see the module docstring for its dtypes).

    Every problem is collected first and raised together in one :class:`InvalidDataError`.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate needs a pandas DataFrame, not {type(df).__name__}")
    if not isinstance(schema, CohortSchema):
        raise TypeError(f"validate needs a CohortSchema, not {type(schema).__name__}")
    df = df.reset_index(drop=True)  # a new frame: positions = labels; the caller's frame is untouched
    problems = _structure_problems(df, schema)
    if len(df) == 0:
        problems.append("the data have no rows; add one row per patient (or per visit)")
    clean: dict[str, pd.Series] = {}
    for column in schema.columns:
        if column in df.columns and not _is_duplicated(df, column):
            clean[column], found = _check_column(df[column], column, schema)
            problems += found
    problems += _key_problems(df, schema)
    if schema.is_longitudinal:
        problems += _changing_baseline_problems(df, schema)
    if problems:
        raise InvalidDataError(problems, source=source)
    out = pd.DataFrame(clean)[list(schema.columns)]
    return _finish_long(out, schema, source) if schema.is_longitudinal else out.reset_index(drop=True)


def _structure_problems(df: pd.DataFrame, schema: CohortSchema) -> list[str]:
    """Columns the schema names that the data lack (with the closest name) or hold twice."""
    problems = []
    for column in schema.columns:
        if column not in df.columns:
            others = [c for c in df.columns if c not in schema.columns]
            problems.append(f"column {column!r} ({_role(column, schema)}) is missing from the data"
                            f"{closest(column, others)}; rename the column in the file or in the schema")
        elif _is_duplicated(df, column):
            problems.append(f"column {column!r} appears more than once; give every column a unique name")
    return problems


def _is_duplicated(df: pd.DataFrame, column: str) -> bool:
    return int((df.columns == column).sum()) > 1


def _role(column: str, schema: CohortSchema) -> str:
    """What the schema uses a column for, e.g. 'baseline numeric' or 'tte time'."""
    out = schema.outcome
    if column == schema.id:
        return "patient id"
    if column in schema.numeric:
        return "baseline numeric"
    if column in schema.categorical:
        return "baseline categorical"
    for key in ("time", "event", "value", "visit"):
        if getattr(out, key) == column:
            return f"{out.type} {key}"
    return "unused"


def _check_column(s: pd.Series, column: str, schema: CohortSchema) -> tuple[pd.Series, list[str]]:
    """The cleaned column and the problems found in it, according to its role."""
    out = schema.outcome
    label = f"column {column!r} ({_role(column, schema)})"
    if column == schema.id:
        return s, _missing_problem(s, label, "give every row its patient id")
    if column in schema.categorical:
        return _as_category(s), []
    if column == out.event or (column == out.value and out.type == "binary"):
        return _check_zero_one(s, label, column == out.event)
    if column in schema.numeric:
        return _check_numbers(s, label, allow_missing=True)
    if column in (out.time, out.visit):
        what = "a follow-up time" if column == out.time else "a visit time"
        return _check_numbers(s, label, allow_missing=False, nonnegative=True, what=what)
    return _check_numbers(s, label, allow_missing=out.type == "longitudinal", lower=out.lower, upper=out.upper,
                          what="a value")


def _check_numbers(s: pd.Series, label: str, *, allow_missing: bool, nonnegative: bool = False,
                   lower: float | None = None, upper: float | None = None,
                   what: str = "a number") -> tuple[pd.Series, list[str]]:
    """float64 values of ``s``; problems for text, infinities, missing, negative or out-of-bounds values."""
    values = _to_float(s)
    problems = []
    bad = (s.notna() & values.isna()) | np.isinf(values)
    if bad.any():
        problems.append(f"{label}: not a number in {_rows(bad, s)}; use plain numbers "
                        "with '.' as decimal point and leave missing values empty")
    if not allow_missing:
        problems += _missing_problem(s, label, f"every row needs {what}")
    if nonnegative and (values < 0).any():
        negative = values < 0
        problems.append(f"{label}: negative in {_rows(negative, s)}; "
                        "times are counted from baseline and must be 0 or more")
    outside = (values < lower if lower is not None else False) | (values > upper if upper is not None else False)
    if np.any(outside):
        bounds = f"[{_fmt(lower) if lower is not None else '-inf'}, {_fmt(upper) if upper is not None else 'inf'}]"
        problems.append(f"{label}: outside the schema bounds {bounds} in {_rows(outside, s)}; correct the "
                        "values or the outcome's lower/upper in the schema")
    return values.where(~np.isinf(values)).astype("float64"), problems


def _to_float(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    if pd.api.types.is_numeric_dtype(s):
        return pd.to_numeric(s, errors="coerce").astype("float64")
    text = s.map(lambda v: v.strip() if isinstance(v, str) else v)
    text = text.map(lambda v: np.nan if isinstance(v, bool) else v)  # True in a number column is not a number
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _check_zero_one(s: pd.Series, label: str, is_event: bool) -> tuple[pd.Series, list[str]]:
    """int64 0/1 values (True/False accepted); problems for missing values and any other value."""
    codes = _zero_one_codes(s)
    problems = _missing_problem(s, label, "every row needs 0 or 1")
    bad = s.notna() & codes.isna()
    if bad.any():
        meaning = "1 = event, 0 = censored" if is_event else "1 = yes, 0 = no"
        problems.append(f"{label}: not 0 or 1 in {_rows(bad, s)}; code it as {meaning} "
                        "(True/False are also accepted)")
    return codes.fillna(0).astype("int64"), problems


def _zero_one_codes(s: pd.Series) -> pd.Series:
    """1.0 / 0.0 for values meaning 1 / 0 (numbers, booleans, their text forms); NaN for anything else."""
    def code(v):
        if isinstance(v, (bool, np.bool_)):
            return float(v)
        if isinstance(v, str):
            v = {"true": 1.0, "false": 0.0}.get(v.strip().lower(), v.strip())
            try:
                v = float(v)
            except ValueError:
                return np.nan
        if isinstance(v, (int, float, np.integer, np.floating)) and v in (0, 1):
            return float(v)
        return np.nan

    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        values = s.astype("float64")
        return values.where(values.isin([0.0, 1.0]))
    return s.map(code).astype("float64")


def _as_category(s: pd.Series) -> pd.Series:
    """Text labels in pandas' default string dtype; integer-valued numbers lose their '.0'."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        numbers = s.astype("float64")
        finite = numbers.dropna()
        if finite.empty or bool(np.all(np.floor(finite) == finite)):
            return numbers.astype("Int64").astype("str").where(s.notna())
        return numbers.astype("str").where(s.notna())
    text = s.astype("str").where(s.notna())
    return text.str.strip()


def _missing_problem(s: pd.Series, label: str, fix: str) -> list[str]:
    missing = s.isna()
    if not missing.any():
        return []
    return [f"{label}: missing in {_rows(missing)}; {fix}"]


def _key_problems(df: pd.DataFrame, schema: CohortSchema) -> list[str]:
    """Duplicate ids (one row per patient) or duplicate (id, visit) pairs (longitudinal)."""
    pid, visit = schema.id, schema.outcome.visit
    keys = [pid, visit] if schema.is_longitudinal else [pid]
    if any(k not in df.columns or _is_duplicated(df, k) for k in keys):
        return []
    frame = pd.DataFrame({k: df[k].to_numpy() for k in keys})
    if schema.is_longitudinal:
        frame[visit] = _to_float(df[visit]).to_numpy()
    frame = frame[frame.notna().all(axis=1)]  # missing ids / visits are reported elsewhere
    repeated = frame[frame.duplicated(keep=False)]
    if repeated.empty:
        return []
    by = keys if schema.is_longitudinal else pid  # a one-element list would make tuple keys in pandas 4
    groups = list(repeated.groupby(by, sort=False).groups.items())
    shown = "; ".join(f"{_fmt_key(key)} in {_rows_at(positions)}" for key, positions in groups[:_SHOWN])
    more = f"; and {len(groups) - _SHOWN} more" if len(groups) > _SHOWN else ""
    if schema.is_longitudinal:
        return [f"columns ({pid!r}, {visit!r}): {_plural(len(groups), '(id, visit) pair')} on more than one row: "
                f"{shown}{more}; keep one row per patient and visit"]
    return [f"column {pid!r} (patient id): {_plural(len(groups), 'id')} on more than one row: {shown}{more}; a "
            f"{schema.outcome.type} outcome needs one row per patient (use type 'longitudinal' for visit data)"]


def _changing_baseline_problems(df: pd.DataFrame, schema: CohortSchema) -> list[str]:
    """Baseline covariates must hold one value on every row of a patient in long data."""
    pid = schema.id
    if pid not in df.columns or _is_duplicated(df, pid):
        return []
    problems = []
    for column in schema.baseline:
        if column not in df.columns or _is_duplicated(df, column):
            continue
        pair = pd.DataFrame({"id": df[pid].to_numpy(), "x": df[column].to_numpy()})
        levels = pair.groupby("id", sort=False, dropna=True)["x"].nunique(dropna=False)
        changing = levels.index[levels > 1].tolist()
        if changing:
            ids = ", ".join(_fmt(i) for i in changing[:_SHOWN]) + (" ..." if len(changing) > _SHOWN else "")
            problems.append(f"column {column!r} ({_role(column, schema)}) changes within "
                            f"{_plural(len(changing), 'patient')} (id {ids}); a baseline covariate needs the same "
                            "value on every row of a patient: repeat the baseline value, or drop the column from "
                            "[baseline]")
    return problems


def _finish_long(out: pd.DataFrame, schema: CohortSchema, source: str | None) -> pd.DataFrame:
    """Drop visits without a value (missed visits), then sort by id and visit."""
    value = schema.outcome.value
    kept = out[out[value].notna()]
    if kept.empty:
        raise InvalidDataError(f"column {value!r} (longitudinal value) is missing on every row; fill in the "
                               "measured values", source=source)
    kept = kept.sort_values([schema.id, schema.outcome.visit], kind="stable")
    return kept.reset_index(drop=True)


# --------------------------------------------------------------------------- message pieces
def _rows(mask, values: pd.Series | None = None) -> str:
    """'3 data rows: 4 ('x'), 9 ('y'), 12 ('z')' for the True positions of ``mask`` (rows numbered from 1)."""
    return _rows_at(np.flatnonzero(np.asarray(mask, dtype=bool)), values)


def _rows_at(positions, values: pd.Series | None = None) -> str:
    """Like :func:`_rows` for 0-based positions; at most ``_SHOWN`` rows are listed (with their values)."""
    positions = list(positions)
    shown = [str(p + 1) + (f" ({_fmt(values.iloc[p])})" if values is not None else "") for p in positions[:_SHOWN]]
    more = f" and {len(positions) - _SHOWN} more" if len(positions) > _SHOWN else ""
    return f"{_plural(len(positions), 'data row')}: {', '.join(shown)}{more}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _fmt(v) -> str:
    """A short, one-line rendering of a cell value."""
    if isinstance(v, str):
        return repr(v if len(v) <= 20 else v[:19] + "…")
    if isinstance(v, (float, np.floating)):
        return format(float(v), "g")
    if isinstance(v, np.generic):
        return str(v.item())
    return str(v)


def _fmt_key(key) -> str:
    if isinstance(key, tuple):
        return "(" + ", ".join(_fmt(k) for k in key) + ")"
    return f"id {_fmt(key)}"


# =========================================================================== cohorts
def load_cohort(source: Source, schema: CohortSchema, *, name: str | None = None, filename: str | None = None,
                citation: str = "", description: str = "") -> Cohort:
    """Read and validate a cohort file; ``sha256`` is the SHA-256 of the file's bytes as read."""
    raw, file_name = _read_bytes(source, filename)
    data = validate(_parse_table(raw, file_name), schema, source=file_name)
    return Cohort(name=name or Path(file_name).stem, schema=schema, data=data, source=file_name,
                  citation=citation, description=description, sha256=hashlib.sha256(raw).hexdigest())


def cohort_from_frame(df: pd.DataFrame, schema: CohortSchema, *, name: str, source: str = "", citation: str = "",
                      description: str = "") -> Cohort:
    """Validate a DataFrame and wrap it as a :class:`Cohort` (``sha256`` of the clean frame's CSV)."""
    data = validate(df, schema, source=source or name)
    return Cohort(name=name, schema=schema, data=data, source=source, citation=citation, description=description)
