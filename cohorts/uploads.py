"""Upload safety: check an uploaded file's size, name and content before any parser sees it.

::

    check_upload(name, data, max_bytes=MAX_UPLOAD_BYTES) -> "csv" | "parquet" | "xpt" | "zip"

The kind comes from the file extension (:data:`ACCEPTED_SUFFIXES`) and must agree with the content: Parquet
starts and ends with ``PAR1``, a zip archive starts with ``PK\\x03\\x04``, a SAS XPORT file starts with the
library header record, and CSV (also ``.tsv`` / ``.txt``) is text: no NUL bytes and (almost) no other control
characters. A zip archive (a PRO-ACT extract) is opened and each member is checked before anything is
extracted: no absolute paths or ``..`` (path traversal), no symbolic links, no encrypted members, no
archives inside the archive, at most ``max_members`` members and at most ``max_unzipped_bytes`` in total
(as the archive declares them; :mod:`zipfile` stops reading a member at its declared size, so a zip bomb
cannot expand beyond that).

Every refusal is an :class:`~cohorts.errors.InvalidDataError` naming the file, what is wrong and how to fix
it. ``MAX_UPLOAD_MB`` is also the app's ``server.maxUploadSize`` (``.streamlit/config.toml``).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import PurePosixPath, PureWindowsPath

from cohorts.errors import InvalidDataError

__all__ = [
    "ACCEPTED_SUFFIXES",
    "MAX_UNZIPPED_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_MB",
    "MAX_ZIP_MEMBERS",
    "check_upload",
    "check_zip",
    "upload_kind",
]

MAX_UPLOAD_MB = 200                         # the server's maxUploadSize, in MiB (Streamlit's "megabytes")
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_ZIP_MEMBERS = 500                       # a PRO-ACT extract holds about 20 tables
MAX_UNZIPPED_BYTES = 2 * 1024 ** 3          # 2 GiB: the whole PRO-ACT database unzipped is well below

#: file extension -> kind
ACCEPTED_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
                     ".xpt": "xpt", ".zip": "zip"}

_PARQUET = b"PAR1"
_ZIP = b"PK\x03\x04"
_EMPTY_ZIP = b"PK\x05\x06"
_XPORT = b"HEADER RECORD*******LIBRARY HEADER RECORD"
_XPORT_V8 = b"HEADER RECORD*******LIBV8   HEADER RECORD"
_GZIP = b"\x1f\x8b"
_OLE = b"\xd0\xcf\x11\xe0"                   # old Excel .xls (and other Office files)
_SAS7BDAT = bytes.fromhex("000000000000000000000000c2ea8160b31411cfbd92080009c7318c18")
_ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".tar", ".7z", ".rar", ".bz2", ".xz", ".jar")
_TEXT_SAMPLE = 65536
_MAX_CONTROL_SHARE = 0.01                   # text may hold a stray control character, binary holds many
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1a")  # \x1a: end-of-file mark of old DOS exports


def upload_kind(name: str) -> str | None:
    """The kind a file name announces (``"csv"``, ``"parquet"``, ``"xpt"``, ``"zip"``), or ``None``."""
    return ACCEPTED_SUFFIXES.get(PurePosixPath(_base_name(name)).suffix.lower())


def _base_name(name: str) -> str:
    """The file name without any folder (a browser may send 'folder/file.csv')."""
    return PureWindowsPath(str(name)).name


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:,.1f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def check_upload(name: str, data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_members: int = MAX_ZIP_MEMBERS,
                 max_unzipped_bytes: int = MAX_UNZIPPED_BYTES) -> str:
    """The kind of an uploaded file (``"csv"``, ``"parquet"``, ``"xpt"`` or ``"zip"``) after checking its size,
    extension and content (and, for a zip archive, every member: see the module docstring)."""
    data = bytes(data)
    source = _base_name(name) or "uploaded file"
    if len(data) > max_bytes:
        raise InvalidDataError(f"the file is {_mb(len(data))}, over the upload limit of {_mb(max_bytes)}; upload a "
                               "smaller extract (only the columns and patients needed), or Parquet, which is "
                               "much smaller than CSV", source=source)
    kind = upload_kind(name)
    if kind is None:
        suffix = PurePosixPath(source).suffix.lower()
        what = f"extension {suffix!r}" if suffix else "no extension"
        hint = ("; unpack compressed files first, except a PRO-ACT extract as .zip" if suffix in _ARCHIVE_SUFFIXES
                else "; Excel: save the sheet as 'CSV UTF-8'" if suffix.startswith(".xls")
                else "; SAS data sets: export them as SAS XPORT (.xpt)" if suffix == ".sas7bdat" else "")
        raise InvalidDataError(f"the file has {what}, which is not accepted; accepted: "
                               f"{', '.join(ACCEPTED_SUFFIXES)}{hint}", source=source)
    if not data:
        raise InvalidDataError("the file is empty (0 bytes); export it again, or check that the upload "
                               "finished", source=source)
    {"csv": _check_text, "parquet": _check_parquet, "xpt": _check_xport, "zip": _check_zip_magic}[kind](data, source)
    if kind == "zip":
        check_zip(data, source=source, max_members=max_members, max_unzipped_bytes=max_unzipped_bytes)
    return kind


def _looks_like(data: bytes) -> str | None:
    """What a binary file seems to be, from its first bytes (for 'named .x but is y' messages)."""
    if data.startswith(_PARQUET):
        return "a Parquet file (rename it to .parquet)"
    if data.startswith((_ZIP, _EMPTY_ZIP)):
        return "a zip archive, e.g. an Excel .xlsx workbook (save the sheet as 'CSV UTF-8'), or a PRO-ACT extract " \
               "(rename it to .zip)"
    if data.startswith(_XPORT):
        return "a SAS XPORT file (rename it to .xpt)"
    if data.startswith(_GZIP):
        return "a gzip-compressed file (unpack it first)"
    if data.startswith(_OLE):
        return "an old Excel .xls workbook (save the sheet as 'CSV UTF-8')"
    if data.startswith(_SAS7BDAT):
        return "a SAS .sas7bdat data set (export it as SAS XPORT .xpt or CSV)"
    return None


def _mismatch(source: str, kind: str, why: str, data: bytes) -> InvalidDataError:
    looks = _looks_like(data)
    fix = f"it looks like {looks}" if looks else f"export it again as {kind}, or give the file the extension of " \
                                                 "what it holds"
    return InvalidDataError(f"the file is named {PurePosixPath(source).suffix.lower()} but {why}; {fix}",
                            source=source)


def _check_text(data: bytes, source: str) -> None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidDataError("the file is UTF-16 text ('Unicode Text'); re-save it as UTF-8 (Excel: File > "
                               "Save As > 'CSV UTF-8 (Comma delimited)')", source=source)
    if _looks_like(data):
        raise _mismatch(source, "CSV", "its content is not text", data)
    sample = data[:_TEXT_SAMPLE]
    nul = sample.find(b"\x00")
    if nul >= 0:
        line = sample.count(b"\n", 0, nul) + 1
        raise _mismatch(source, "CSV", f"it holds NUL bytes (the first on line {line}), so it is not text", data)
    controls = sum(1 for b in sample if (b < 0x20 or b == 0x7F) and b not in _TEXT_CONTROLS)
    if controls > _MAX_CONTROL_SHARE * len(sample):
        raise _mismatch(source, "CSV", f"{controls:,} of its first {len(sample):,} bytes are control characters, "
                        "so it is not text", data)
    if not data.strip():
        raise InvalidDataError("the file holds only blank space; export the table again with a header row",
                               source=source)


def _check_parquet(data: bytes, source: str) -> None:
    if not data.startswith(_PARQUET):
        raise _mismatch(source, "Parquet", "it does not start with the Parquet marker 'PAR1'", data)
    if len(data) < 12 or not data.endswith(_PARQUET):
        raise InvalidDataError("the Parquet file is truncated: it does not end with the Parquet marker 'PAR1'; "
                               "upload it again or export it again", source=source)


def _check_xport(data: bytes, source: str) -> None:
    if data.startswith(_XPORT_V8):
        raise InvalidDataError("this is a SAS XPORT version 8 file, which cannot be read; export the dataset as "
                               "SAS XPORT version 5 (the FDA format, e.g. R haven::write_xpt(version = 5)) or as "
                               "CSV", source=source)
    if not data.startswith(_XPORT):
        raise _mismatch(source, "SAS XPORT", "it does not start with the SAS XPORT library header record", data)


def _check_zip_magic(data: bytes, source: str) -> None:
    if data.startswith(_EMPTY_ZIP):
        raise InvalidDataError("the zip archive is empty; zip the folder of the PRO-ACT CSV files again",
                               source=source)
    if not data.startswith(_ZIP):
        raise _mismatch(source, "a zip archive", "it does not start with the zip marker 'PK'", data)


def check_zip(data: bytes, *, source: str = "uploaded zip", max_members: int = MAX_ZIP_MEMBERS,
              max_unzipped_bytes: int = MAX_UNZIPPED_BYTES) -> None:
    """Refuse a zip archive that is damaged or unsafe to unpack (see the module docstring); all problems at once."""
    rezip = "zip the folder of CSV files again (without links or archives inside)"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            problems = [] if len(members) > max_members else [p for info in members
                                                              for p in _member_problems(archive, info)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise InvalidDataError(f"not a readable zip archive ({exc or type(exc).__name__}); it may be truncated "
                               f"or damaged: {rezip}", source=source) from None
    if len(members) > max_members:
        raise InvalidDataError(f"the archive holds {len(members):,} members, more than the {max_members:,} "
                               f"accepted; {rezip} holding only the tables needed", source=source)
    total = sum(max(info.file_size, 0) for info in members)
    if total > max_unzipped_bytes:
        problems.append(f"the archive unpacks to {_mb(total)}, over the limit of {_mb(max_unzipped_bytes)} (a "
                        f"damaged archive or a 'zip bomb'); {rezip} holding only the tables needed")
    if problems:
        raise InvalidDataError(problems[:10] + ([f"and {len(problems) - 10} more problems"] if len(problems) > 10
                                                else []), source=source)


def _member_problems(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> list[str]:
    name = info.filename
    shown = repr(name if len(name) <= 80 else name[:79] + "…")
    parts = name.replace("\\", "/").split("/")
    problems = []
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive or ".." in parts or "\x00" in name:
        problems.append(f"member {shown} has an absolute path or '..' (it would be written outside the folder); "
                        "zip the folder again from inside it")
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        problems.append(f"member {shown} is a symbolic link; replace it by the file itself")
    if info.flag_bits & 0x1:
        problems.append(f"member {shown} is encrypted (password-protected); zip it again without a password")
    nested = not problems and not info.is_dir() and (
        name.lower().endswith(_ARCHIVE_SUFFIXES) or _head(archive, info).startswith((_ZIP, _EMPTY_ZIP, _GZIP)))
    if nested:
        problems.append(f"member {shown} is itself an archive; unpack it and zip the CSV files themselves")
    return problems


def _head(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The first bytes of a member (b'' when they cannot be read: the importer reports that member)."""
    try:
        with archive.open(info) as member:
            return member.read(4)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zlib.error):
        return b""
