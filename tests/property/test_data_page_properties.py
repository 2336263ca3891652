"""Property: the Data page fed a malformed upload shows an error naming the file, never an exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from app_pages._data_sources import UPLOAD

ROOT = Path(__file__).resolve().parents[2]
XPORT_HEAD = b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!"
names = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
tails = st.binary(max_size=200)

# (file name, bytes) pairs that cannot be a valid table or PRO-ACT extract
malformed = st.one_of(
    tails.map(lambda b: ("nul.csv", b"id,x\n1," + b + b"\x00")),                   # binary: a NUL byte
    tails.map(lambda b: ("cut.parquet", b"PAR1" + b + b"XXXX")),                   # no end marker
    tails.map(lambda b: ("junk.parquet", b"PAR1" + b + b"\xff\xff\xff\x7fPAR1")),  # footer length beyond the file
    tails.map(lambda b: ("junk.xpt", XPORT_HEAD + b)),                              # no member header
    tails.map(lambda b: ("junk.zip", b"PK\x03\x04" + b)),                           # no central directory
    st.lists(names, min_size=1, max_size=5, unique=True).map(lambda c: ("header.csv", (",".join(c) + "\n").encode())),
    st.lists(names, min_size=2, max_size=5, unique=True).map(            # every row one value longer than the header
        lambda c: ("long.tsv", ("\t".join(c) + "\n" + "\t".join("1" * (len(c) + 1)) + "\n").encode())),
)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(malformed)
def test_malformed_uploads_show_an_error_not_an_exception(upload):
    name, data = upload
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.radio(key="w_data_data_source").set_value(UPLOAD).run()
    at.file_uploader(key="w_data_upload").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    errors = "\n".join(e.value for e in at.error)
    assert name in errors, errors
    assert at.session_state["cohort"].name == "als-natural-history"   # the previous cohort is kept
