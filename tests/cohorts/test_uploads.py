"""Upload safety (cohorts.uploads.check_upload): size, extension, content sniffing and zip member checks.

Seeds are the test data (tests/data/va_lung.csv), the ADaM XPORT fixture and the PRO-ACT zip fixture; unsafe
archives are built here with :mod:`zipfile`.
"""

import io
import tomllib
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from cohorts.errors import InvalidDataError
from cohorts.uploads import (
    ACCEPTED_SUFFIXES,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_MB,
    check_upload,
    upload_kind,
)

ROOT = Path(__file__).resolve().parents[2]
CSV = (ROOT / "tests" / "data" / "va_lung.csv").read_bytes()
XPT = (ROOT / "tests" / "cohorts" / "fixtures" / "adam" / "adsl.xpt").read_bytes()
PROACT_ZIP = (ROOT / "tests" / "cohorts" / "fixtures" / "proact.zip").read_bytes()


def _parquet() -> bytes:
    buf = io.BytesIO()
    pd.read_csv(io.BytesIO(CSV)).to_parquet(buf)
    return buf.getvalue()


PARQUET = _parquet()


def _zip(members: dict[str, bytes], *, edit=None, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``members``; ``edit(info)`` may change each member's ZipInfo before it is written."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.compress_type = compression
            if edit:
                edit(info)
            z.writestr(info, data)
    return buf.getvalue()


def _refused(name, data, *needles, **limits) -> str:
    with pytest.raises(InvalidDataError) as err:
        check_upload(name, data, **limits)
    message = str(err.value)
    for needle in needles:
        assert needle in message, message
    return message


# =========================================================================== accepted files
@pytest.mark.parametrize("name,data,kind", [
    ("va_lung.csv", CSV, "csv"), ("VA_LUNG.CSV", CSV, "csv"), ("folder/va_lung.tsv", CSV.replace(b",", b"\t"), "csv"),
    ("notes.txt", CSV, "csv"), ("va.parquet", PARQUET, "parquet"), ("va.pq", PARQUET, "parquet"),
    ("adsl.xpt", XPT, "xpt"), ("proact.zip", PROACT_ZIP, "zip"), ("C:\\Users\\me\\va_lung.csv", CSV, "csv"),
])
def test_accepted_files_and_their_kind(name, data, kind):
    assert check_upload(name, data) == kind


def test_latin1_text_passes_the_sniffer_and_is_left_to_the_reader():
    assert check_upload("latin.csv", "id,ville\n1,Orléans\n".encode("latin-1")) == "csv"


def test_upload_kind_from_the_name():
    assert upload_kind("a/b/Data.Parquet") == "parquet"
    assert upload_kind("data.csv.gz") is None
    assert upload_kind(".csv") is None   # a hidden file without extension
    assert set(ACCEPTED_SUFFIXES) == {".csv", ".tsv", ".txt", ".parquet", ".pq", ".xpt", ".zip"}


# =========================================================================== refusals
def test_size_over_the_limit_says_limit_and_size():
    _refused("big.csv", b"a,b\n" + b"1,2\n" * 300, "1,204 bytes", "upload limit of 1,000 bytes", max_bytes=1000)
    message = _refused("big.csv", b"x" * (3 * 1024 * 1024), "3.0 MB", "2.0 MB", max_bytes=2 * 1024 * 1024)
    assert "big.csv" in message


def test_default_limit_matches_the_streamlit_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB
    assert MAX_UPLOAD_BYTES == MAX_UPLOAD_MB * 1024 * 1024   # Streamlit's megabytes are MiB


@pytest.mark.parametrize("name,hint", [("book.xlsx", "CSV UTF-8"), ("data.csv.gz", "unpack"), ("data", "no extension"),
                                       ("study.sas7bdat", "SAS XPORT"), ("run.exe", "accepted:")])
def test_unknown_extension_lists_the_accepted_ones(name, hint):
    message = _refused(name, CSV, hint, ".csv", ".parquet", ".xpt", ".zip")
    assert name.rsplit("\\", 1)[-1] in message


@pytest.mark.parametrize("name", ["empty.csv", "empty.parquet", "empty.xpt", "empty.zip"])
def test_empty_file(name):
    _refused(name, b"", "empty (0 bytes)")


def test_blank_text_is_refused():
    _refused("blank.csv", b"  \n\r\n  ", "blank space")


@pytest.mark.parametrize("name,data,needles", [
    ("data.csv", PARQUET, ["Parquet", "rename it to .parquet"]),
    ("data.csv", PROACT_ZIP, ["zip archive", "xlsx"]),
    ("data.csv", XPT, ["SAS XPORT", ".xpt"]),
    ("data.csv", b"\x1f\x8b\x08\x00" + b"\x00" * 20, ["gzip"]),
    ("data.csv", b"id,x\n1,2\n3\x00,4\n", ["NUL bytes", "line 3"]),
    ("data.csv", bytes(range(1, 32)) * 20, ["control characters"]),
    ("data.csv", "id,x\n1,2\n".encode("utf-16"), ["UTF-16", "UTF-8"]),
    ("data.parquet", CSV, ["PAR1"]),
    ("data.parquet", PARQUET[:-20], ["truncated"]),
    ("data.xpt", CSV, ["library header"]),
    ("data.xpt", XPT.replace(b"LIBRARY ", b"LIBV8   ", 1), ["version 8"]),
    ("data.zip", CSV, ["zip marker"]),
    ("data.zip", XPT, ["zip marker", "SAS XPORT"]),
])
def test_content_that_does_not_match_the_extension(name, data, needles):
    _refused(name, data, *needles)


# =========================================================================== zip archives
def test_damaged_zip():
    _refused("extract.zip", PROACT_ZIP[: len(PROACT_ZIP) // 2], "not a readable zip archive")


def test_empty_zip():
    _refused("extract.zip", _zip({}), "archive is empty")


@pytest.mark.parametrize("member", ["/etc/cron.d/evil.csv", "../evil.csv", "PROACT/../../evil.csv",
                                    "C:/evil.csv", "..\\evil.csv"])
def test_zip_path_traversal(member):
    _refused("x.zip", _zip({"PROACT_ALSFRS.csv": b"a\n1\n", member: b"a\n1\n"}), repr(member), "outside the folder")


def test_zip_symlink():
    def link(info):
        info.external_attr = (0o120777 << 16)
    _refused("x.zip", _zip({"PROACT_ALSFRS.csv": b"/etc/passwd"}, edit=link), "symbolic link")


def test_zip_encrypted_member():
    data = bytearray(_zip({"PROACT_ALSFRS.csv": b"a\n1\n"}, compression=zipfile.ZIP_STORED))
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 6] |= 0x1     # general purpose flag bit 0: encrypted (local header, then central directory)
    data[central + 8] |= 0x1
    _refused("x.zip", bytes(data), "encrypted", "without a password")


def test_nested_archives_by_name_and_by_content():
    inner = _zip({"PROACT_ALSFRS.csv": b"a\n1\n"})
    _refused("x.zip", _zip({"inner.zip": inner}), "'inner.zip' is itself an archive")
    _refused("x.zip", _zip({"PROACT_ALSFRS.csv": inner}), "'PROACT_ALSFRS.csv' is itself an archive")


def test_too_many_members():
    data = _zip({f"t{i}.csv": b"a\n1\n" for i in range(6)})
    assert check_upload("x.zip", data, max_members=6) == "zip"
    _refused("x.zip", data, "6 members", "more than the 5 accepted", max_members=5)


def test_zip_bomb_by_declared_size():
    bomb = _zip({"PROACT_ALSFRS.csv": b"0" * (4 * 1024 * 1024)})
    assert len(bomb) < 20_000   # 4 MB of zeros compress to a few kB
    _refused("bomb.zip", bomb, "unpacks to 4.0 MB", "over the limit of 1.0 MB", "zip bomb",
             max_unzipped_bytes=1024 * 1024)
    assert check_upload("bomb.zip", bomb, max_unzipped_bytes=8 * 1024 * 1024) == "zip"


def test_every_zip_problem_is_reported_at_once():
    def link(info):
        if info.filename == "b.csv":
            info.external_attr = (0o120777 << 16)
    message = _refused("x.zip", _zip({"../a.csv": b"1", "b.csv": b"1"}, edit=link), "2 problems")
    assert "'../a.csv'" in message and "'b.csv' is a symbolic link" in message


def test_folders_and_macos_metadata_are_fine():
    data = _zip({"PROACT_2024/": b"", "PROACT_2024/PROACT_ALSFRS.csv": b"a\n1\n", "__MACOSX/._x": b"\x00\x05"})
    assert check_upload("x.zip", data) == "zip"
