"""Property: random, truncated or mutated uploads (CSV, Parquet, XPORT, zip) going through the Data page's
pipeline (check_upload, read_table, schema inference, load_cohort; a zip through load_proact) raise only a
WorkbenchError with a message, never another exception.

Seeds: tests/data/va_lung.csv, the same table as Parquet and as SAS XPORT (tests/cohorts/fixtures/xport.py),
the ADaM ADSL XPORT fixture and the PRO-ACT extract zipped deflated and stored (so mutations reach the CSV
text inside).
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohorts.errors import InvalidDataError, WorkbenchError
from cohorts.io import load_cohort, read_table
from cohorts.proact import load_proact
from cohorts.schema import CohortSchema
from cohorts.uploads import check_upload

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "cohorts" / "fixtures"
FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _xport_writer():
    spec = importlib.util.spec_from_file_location("_fixtures_xport", FIX / "xport.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_xport


CSV = (ROOT / "tests" / "data" / "va_lung.csv").read_bytes()
VA = pd.read_csv(io.BytesIO(CSV))
VA_SCHEMA = CohortSchema.from_toml(ROOT / "examples" / "va_lung_schema.toml")
SHORT = VA.rename(columns={"patient_id": "id", "Age_in_years": "age", "Celltype": "cell", "time_days": "time"})
SHORT_SCHEMA = CohortSchema.from_dict({"id": "id", "baseline": {"numeric": ["age"], "categorical": ["cell"]},
                                       "outcome": {"type": "tte", "time": "time", "event": "death"}})


def _parquet(df) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


def _zip(files: dict[str, bytes], compression) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(f"extract/{name}", (2020, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return buf.getvalue()


PROACT = {p.name: p.read_bytes() for p in sorted((FIX / "proact").iterdir())}


TABLES = {  # (name, bytes, schema that fits the unmutated file)
    "csv": ("va_lung.csv", CSV, VA_SCHEMA),
    "tsv": ("va_lung.tsv", CSV.replace(b",", b"\t"), VA_SCHEMA),
    "parquet": ("va_lung.parquet", _parquet(VA), VA_SCHEMA),
    "xpt": ("va_lung.xpt", _xport_writer()(SHORT[list(SHORT.columns)[:9]], name="VALUNG"), SHORT_SCHEMA),
    "adsl": ("adsl.xpt", (FIX / "adam" / "adsl.xpt").read_bytes(), None),
}
ZIPS = [_zip(PROACT, zipfile.ZIP_STORED), (FIX / "proact.zip").read_bytes()]
SPECIAL = [b",", b";", b"\t", b"\"", b"\n", b"\r\n", b"\x00", b"\xff\xfe", b"nan", b"inf", b"-1e999", b"PAR1",
           b"PK\x03\x04", b"\xc3", b"", b"HEADER RECORD", b" " * 80]


@st.composite
def mutate(draw, data: bytes) -> bytes:
    """``data`` truncated, with bytes flipped, or with a special chunk inserted / a chunk removed."""
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "tail"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "truncate":
            data = data[:at]
        elif op == "flip" and data:
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif op == "insert":
            data = data[:at] + draw(st.one_of(st.sampled_from(SPECIAL), st.binary(max_size=8))) + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 200)):]
        else:
            data = data[: len(data) - draw(st.integers(1, 16))]
    return data


def _pipeline(name: str, data: bytes, schema: CohortSchema | None) -> None:
    """What the Data page does with an upload; only WorkbenchErrors (with a message) may come out."""
    try:
        kind = check_upload(name, data)
        if kind == "zip":
            for outcome in ("alsfrs_r", "survival"):
                load_proact(data, outcome=outcome, placebo_only=outcome == "alsfrs_r")
            return
        df = read_table(data, filename=name)
        if schema is not None:
            load_cohort(data, schema, filename=name)
        inferred = CohortSchema.infer(df)
        load_cohort(data, inferred, filename=name)
    except WorkbenchError as exc:
        assert str(exc).strip()


@FUZZ
@given(st.sampled_from(sorted(TABLES)).flatmap(lambda k: st.tuples(st.just(k), mutate(TABLES[k][1]))))
def test_mutated_tables(case):
    key, data = case
    name, _, schema = TABLES[key]
    _pipeline(name, data, schema)


@settings(FUZZ, max_examples=40)
@given(st.sampled_from(range(len(ZIPS))).flatmap(lambda i: mutate(ZIPS[i])))
def test_mutated_proact_zips(data):
    _pipeline("extract.zip", data, None)


@st.composite
def proact_with_a_mutated_table(draw) -> bytes:
    """The PRO-ACT extract with one table's CSV mutated (then zipped: the importer reads the damaged text)."""
    files = dict(PROACT)
    table = draw(st.sampled_from(sorted(files)))
    files[table] = draw(mutate(files[table]))
    return _zip(files, zipfile.ZIP_DEFLATED)


@settings(FUZZ, max_examples=40)
@given(proact_with_a_mutated_table())
def test_proact_extract_with_a_mutated_table(data):
    _pipeline("extract.zip", data, None)


@settings(FUZZ, max_examples=150)
@given(st.sampled_from(["x.csv", "x.tsv", "x.txt", "x.parquet", "x.pq", "x.xpt", "x.zip", "x.xlsx", "x"]),
       st.one_of(st.binary(max_size=400),
                 st.sampled_from([b"PAR1", b"PK\x03\x04", b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!"])
                 .flatmap(lambda head: st.binary(max_size=400).map(lambda tail: head + tail)),
                 st.text(max_size=300).map(lambda t: t.encode("utf-8"))))
def test_random_bytes_under_any_name(name, data):
    _pipeline(name, data, VA_SCHEMA)


def test_the_seeds_themselves_load():
    """The unmutated seeds pass the whole pipeline (so the mutations start from valid files)."""
    for name, data, schema in TABLES.values():
        assert check_upload(name, data) in ("csv", "parquet", "xpt")
        if schema is not None:
            assert load_cohort(data, schema, filename=name).n_patients == 137
    for data in ZIPS:
        assert load_proact(data).n_patients == 19


# =========================================================================== bugs the fuzzing found (fixed)
def test_parquet_with_damaged_pandas_metadata_is_invalid_data():
    """pandas raised KeyError('pandas_type') for a Parquet file whose pandas metadata lacks a key."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.Table.from_pandas(VA)
    meta = json.loads(table.schema.metadata[b"pandas"])
    del meta["columns"][0]["pandas_type"]
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()}), buf)
    with pytest.raises(InvalidDataError, match="could not read the Parquet file"):
        read_table(buf.getvalue(), filename="damaged.parquet")


def test_csv_header_with_a_lone_carriage_return():
    """csv.Error escaped from the header check; old Mac files end lines with a lone '\\r'."""
    assert read_table(b"id,x\r1,2\r3,4\r", filename="mac.csv").to_dict("list") == {"id": [1, 3], "x": [2, 4]}
    with pytest.raises(InvalidDataError, match="line 3 has 3 fields but the header has 2"):
        read_table(b"a,b\rc,d\n1,2,3\n", filename="x.csv")
    with pytest.raises(InvalidDataError, match="malformed CSV header"):   # csv.Error: a field over 128 kB
        read_table(b'"' + b"a" * 200_000 + b'",b\n1,2\n', filename="x.csv")


def test_rows_longer_than_the_header_never_shift_the_columns():
    """pandas took the first column(s) as the index when every row had extra values: columns shifted silently
    (and the PRO-ACT importer failed with KeyError / TypeError on such a table)."""
    with pytest.raises(InvalidDataError, match="more values than the header has column names"):
        read_table(b"a,b\n1,2,3\n4,5,6\n", filename="x.csv")
    # a delimiter at the end of every row (an empty last field) is harmless and dropped
    assert read_table(b"a,b,c\n1,2,3,\n4,5,6,\n", filename="x.csv").to_dict("list") == {"a": [1, 4], "b": [2, 5],
                                                                                         "c": [3, 6]}
    files = dict(PROACT)
    header, rest = files["PROACT_ALSFRS.csv"].split(b"\n", 1)
    files["PROACT_ALSFRS.csv"] = header.replace(b"Q1_Speech,", b"", 1) + b"\n" + rest
    with pytest.raises(InvalidDataError, match="PROACT_ALSFRS.csv"):
        load_proact(_zip(files, zipfile.ZIP_DEFLATED))


def test_proact_zip_member_with_an_unknown_compression_method():
    """zipfile's NotImplementedError escaped load_proact."""
    data = bytearray(_zip(PROACT, zipfile.ZIP_DEFLATED))
    central = data.find(b"PK\x01\x02")
    data[central + 10] = 99            # compression method of the first member: unknown
    with pytest.raises(InvalidDataError, match="cannot be read"):
        load_proact(bytes(data))
