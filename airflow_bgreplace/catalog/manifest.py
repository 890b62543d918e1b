"""Catalog manifests: one row per SKU naming a product photo and the treatment it gets tonight.

A manifest is CSV (header row) or JSON Lines (one object per line), read from a local path, a
``file://`` URI, an object-storage URI (``s3://...``, opened through ``ObjectStoragePath``) or an
object with ``open()``/``read_text()``. Keys, in any order:

==============  ========================================================================
``sku``         required, unique; names the output files, so no ``/`` or ``\\``
``image``       required: http(s) URL, absolute path, path relative to the manifest's
                folder, or object-storage URI
``treatment``   ``remove`` | ``color`` | ``scene``
``color``       ``#RRGGBB``, ``RRGGBB`` or ``r,g,b``; required for ``color``
``prompt``      scene description; ``scene`` needs a prompt, a reference, or both
``reference``   a scene image, same forms as ``image``
``vendor``      optional: runflow | fashn | fal | imagepipeline | local
``output_format`` optional: png | jpeg | webp
==============  ========================================================================

Reading never raises for a bad row: each problem becomes a :class:`RowError` naming the row,
the sku and the field, and the other rows go on. Only a manifest that cannot be read as a whole
(no ``sku`` column, not UTF-8, missing file) raises :class:`ManifestError`.

Row numbers are the line the record starts on, counting the CSV header as row 1, as a text editor
or a spreadsheet numbers them.
"""

from __future__ import annotations

import csv
import enum
import functools
import io
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from airflow_bgreplace.catalog import locations
from airflow_bgreplace.catalog.locations import Location

VENDOR_NAMES: Final = ("runflow", "fashn", "fal", "imagepipeline", "local")
OUTPUT_FORMATS: Final = ("png", "jpeg", "webp")
#: Every key a row may carry, in the order errors are reported.
FIELDS: Final = ("sku", "image", "treatment", "color", "prompt", "reference", "vendor", "output_format")
#: British spellings are accepted for the column and the treatment (the docs use both).
_KEY_ALIASES: Final = {"colour": "color"}
_TREATMENT_ALIASES: Final = {"colour": "color"}
_OUTPUT_FORMAT_ALIASES: Final = {"jpg": "jpeg"}
_HEX_COLOUR = re.compile(r"#?([0-9A-Fa-f]{6})")
_UNFIT_FOR_FILE_NAME = re.compile(r"[/\\\x00-\x1f]")
#: Network protocols that name no object store: fsspec would open some of them (ftp, sftp, smb)
#: from the worker, which is not where catalog images are meant to come from.
_NOT_STORAGE_SCHEMES: Final = frozenset(
    {"ftp", "ftps", "sftp", "ssh", "scp", "smb", "cifs", "tftp", "telnet", "gopher", "ldap", "ldaps", "dict",
     "ws", "wss", "jar"}
)
MAX_SKU_LENGTH: Final = 128

ManifestFormat = Literal["csv", "jsonl"]
RGB = tuple[int, int, int]


class Treatment(str, enum.Enum):
    """What happens to the background."""

    remove = "remove"  # transparent cut-out
    color = "color"  # flat colour
    scene = "scene"  # generated or reference scene


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (as opposed to one bad row)."""


class RowError(BaseModel):
    """One problem with one manifest row."""

    model_config = ConfigDict(frozen=True)

    row: int
    sku: str | None = None
    #: The field at fault; None when the row as a whole is wrong (not JSON, too many cells).
    field: str | None = None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f" (sku {self.sku})" if self.sku else "")
        what = f"field {self.field!r}: " if self.field else ""
        return f"{where}: {what}{self.message}"


class CatalogItem(BaseModel):
    """A valid manifest row, normalised.

    ``color`` is an ``(r, g, b)`` tuple; ``image`` and ``reference`` are absolute local paths,
    http(s) URLs or object-storage URIs (relative paths resolved against the manifest's folder);
    enum-like values are lower-case. Built directly (not by :func:`read_manifest`), relative paths
    resolve against the working directory and files are not checked.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str
    image: str
    treatment: Treatment
    color: RGB | None = None
    prompt: str | None = None
    reference: str | None = None
    vendor: str | None = None
    output_format: str | None = None
    #: Where the item came from in its manifest (for messages), if it came from one.
    row: int | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        context = info.context if isinstance(info.context, RowContext) else RowContext()
        values, problems = normalise_row(data, context)
        if problems:
            raise ValueError("; ".join(f"field {name!r}: {message}" for name, message in problems))
        # Unknown keys are passed on so that extra="forbid" names them.
        return {**{key: value for key, value in data.items() if key not in FIELDS}, **values}

    @property
    def color_hex(self) -> str | None:
        return None if self.color is None else "#{:02x}{:02x}{:02x}".format(*self.color)


@dataclass
class ManifestReadResult:
    """What :func:`read_manifest` found: the valid items and one error per bad field or row."""

    items: list[CatalogItem]
    errors: list[RowError]
    #: Problems that touch no row, such as an unknown column (probably a typo) that is ignored.
    warnings: list[str] = field(default_factory=list)
    #: Records read, valid or not (blank lines are not records).
    rows: int = 0
    format: ManifestFormat = "csv"

    @property
    def invalid_rows(self) -> int:
        return len({error.row for error in self.errors})


def parse_color(value: Any) -> RGB | None:
    """``#RRGGBB``, ``RRGGBB``, ``"r,g,b"`` or a sequence of three 0-255 integers, as a tuple."""
    if value is None or (isinstance(value, tuple | list) and len(value) == 0):
        return None
    if isinstance(value, tuple | list):
        parts: list[Any] = list(value)
        shown = ",".join(str(part) for part in parts)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if "," not in text:
            match = _HEX_COLOUR.fullmatch(text)
            if match is None:
                raise ValueError(f"{text!r} is not a hex colour (expected #RRGGBB, RRGGBB or r,g,b)")
            digits = match.group(1)
            return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
        parts, shown = text.split(","), text
    else:
        raise ValueError(f"{value!r} is not a colour (expected #RRGGBB, RRGGBB or r,g,b)")
    try:
        channels = [int(str(part).strip()) for part in parts]
    except ValueError:
        channels = []
    if len(channels) != 3 or any(not 0 <= channel <= 255 for channel in channels):
        raise ValueError(f"{shown!r} is not an r,g,b colour (three whole numbers 0-255)")
    return channels[0], channels[1], channels[2]


def read_manifest(
    source: Location,
    *,
    format: ManifestFormat | None = None,
    check_files: bool = True,
) -> ManifestReadResult:
    """Read and validate a catalog manifest, streaming: memory holds the items and errors, not the file.

    ``format`` is taken from the extension (``.csv``/``.tsv``, ``.jsonl``/``.ndjson``/``.json``)
    or, failing that, sniffed from the first line. ``check_files`` reports local images and
    references that do not exist; remote ones are not probed (one request per row would make a
    100,000-row manifest slow), so they fail later, per item.
    """
    name = locations.location_text(source)
    base = locations.parent_of(source)
    context = RowContext(base=base, check_files=check_files)
    result = ManifestReadResult(items=[], errors=[])
    with _open_text(source) as handle:
        try:
            head: list[str] = []
            for line in handle:
                head.append(line)
                if line.strip():
                    break
            result.format = format or _detect_format(name, head[-1] if head else "")
            stream = itertools.chain(head, handle)
            records = _csv_records(stream, name) if result.format == "csv" else _jsonl_records(stream)
            _validate(records, context, result)
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{name} is not UTF-8 text (after row {result.rows}): {exc.reason}") from exc
    return result


# --------------------------------------------------------------------------- reading


@dataclass
class _Record:
    row: int
    values: dict[str, Any]
    #: A problem with the record as a whole; it is not validated further.
    problem: str | None = None


def _open_text(source: Location) -> IO[str]:
    if not isinstance(source, str | os.PathLike) and not isinstance(source, locations.StoragePath):
        reader = getattr(source, "read_text", None)
        if callable(reader):
            return io.StringIO(reader(), newline="")
    try:
        binary = locations.open_binary(source)
    except FileNotFoundError as exc:
        raise ManifestError(f"manifest not found: {locations.location_text(source)}") from exc
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot open manifest {locations.location_text(source)}: {exc}") from exc
    # utf-8-sig drops the byte-order mark spreadsheet programs put in front of CSV exports.
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


def _detect_format(name: str, first_line: str) -> ManifestFormat:
    suffix = Path(name.split("?", 1)[0]).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


def _column_name(raw: Any) -> str:
    key = str(raw).strip().lower().replace(" ", "_").replace("-", "_")
    return _KEY_ALIASES.get(key, key)


def _csv_records(lines: Iterable[str], name: str) -> Iterator[_Record | str]:
    """Records of a CSV manifest, or a warning string (yielded before any record)."""
    lines = iter(lines)
    header_line = next(lines, "")
    while header_line and not header_line.strip():
        header_line = next(lines, "")
    if not header_line.strip():
        raise ManifestError(f"{name} is empty")
    # The delimiter is the commonest candidate in the header: Excel in many locales writes ';'.
    delimiter = max(",;\t", key=lambda candidate: (header_line.count(candidate), candidate == ","))
    reader = csv.reader(itertools.chain([header_line], lines), delimiter=delimiter)
    columns = [_column_name(cell) for cell in next(reader)]
    if "sku" not in columns:
        raise ManifestError(f"{name} has no 'sku' column (header: {', '.join(columns)})")
    repeated = sorted({column for column in columns if column and columns.count(column) > 1})
    if repeated:
        raise ManifestError(f"{name} names column(s) {', '.join(repeated)} twice")
    unknown = [column for column in columns if column and column not in FIELDS]
    if unknown:
        yield f"ignored unknown column(s): {', '.join(unknown)} (known: {', '.join(FIELDS)})"
    known = [(index, column) for index, column in enumerate(columns) if column in FIELDS]
    last_line = reader.line_num
    for cells in reader:
        row, last_line = last_line + 1, reader.line_num
        if not "".join(cells).strip():
            continue
        # Spreadsheets drop trailing empty cells: a short row just lacks its last values.
        values = {column: cells[index] for index, column in known if index < len(cells)}
        extra = [cell for cell in cells[len(columns) :] if cell.strip()]
        problem = None
        if extra:
            # The usual cause is a prompt with a comma and no quotes around it.
            problem = (
                f"has {len(columns) + len(extra)} values but the header names {len(columns)} columns "
                "(quote values that contain the delimiter)"
            )
        yield _Record(row, values, problem)


def _jsonl_records(lines: Iterable[str]) -> Iterator[_Record | str]:
    unknown: set[str] = set()
    for row, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield _Record(row, {}, f"is not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(value, dict):
            yield _Record(row, {}, f"is a JSON {type(value).__name__}, not an object")
            continue
        values: dict[str, Any] = {}
        for raw_key, item in value.items():
            key = _column_name(raw_key)
            if key in FIELDS:
                values[key] = item
            elif key not in unknown:
                unknown.add(key)
                yield f"ignored unknown key {raw_key!r} (first seen on row {row})"
        yield _Record(row, values)


def _validate(records: Iterable[_Record | str], context: RowContext, result: ManifestReadResult) -> None:
    first_row_of: dict[str, int] = {}
    for record in records:
        if isinstance(record, str):
            result.warnings.append(record)
            continue
        result.rows += 1
        raw_sku = record.values.get("sku")
        sku = str(raw_sku).strip() if isinstance(raw_sku, str | int) and str(raw_sku).strip() else None
        if record.problem is not None:
            result.errors.append(RowError(row=record.row, sku=sku, message=record.problem))
            continue
        if sku is not None:
            first = first_row_of.setdefault(sku, record.row)
            if first != record.row:
                result.errors.append(
                    RowError(row=record.row, sku=sku, field="sku", message=f"{sku!r} repeats row {first}")
                )
                continue
        values, problems = normalise_row(record.values, context)
        if problems:
            result.errors.extend(
                RowError(row=record.row, sku=sku, field=name, message=message) for name, message in problems
            )
        else:
            # normalise_row has done all the checking the model would repeat.
            result.items.append(CatalogItem.model_construct(**values, row=record.row))


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class RowContext:
    """What relative paths resolve against, and whether local files must exist."""

    #: The manifest's folder: a local ``Path`` or a ``scheme://`` URI.
    base: Path | str | None = None
    check_files: bool = False

    @functools.cached_property
    def local_base(self) -> str | None:
        # A plain string: os.path on strings is several times faster than pathlib, row after row.
        if self.base is None:
            return os.getcwd()
        return os.fspath(self.base) if isinstance(self.base, Path) else None


def normalise_row(values: Mapping[str, Any], context: RowContext) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Check and normalise one row: ``(values, [(field, problem), ...])``, every problem found.

    The one implementation of the row rules: :func:`read_manifest` calls it per row and
    :class:`CatalogItem` calls it when built directly.
    """
    normalised: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, check in _CHECKS:
        value = values.get(name)
        if (value is None or value == "") and name in _OPTIONAL:
            normalised[name] = None  # most rows leave most optional cells empty: skip the call
            continue
        try:
            normalised[name] = check(value, context)
        except ValueError as exc:
            problems.append((name, str(exc)))
    # Cross-field rules, only where the fields involved are themselves fine (one message per cause).
    treatment = normalised.get("treatment")
    if treatment is Treatment.color and "color" in normalised and normalised["color"] is None:
        problems.append(("color", "missing; treatment 'color' needs a colour"))
    if (
        treatment is Treatment.scene
        and "prompt" in normalised
        and "reference" in normalised
        and normalised["prompt"] is None
        and normalised["reference"] is None
    ):
        problems.append(("prompt", "missing; treatment 'scene' needs a prompt, a reference image, or both"))
    if len(problems) > 1:
        problems.sort(key=lambda problem: FIELDS.index(problem[0]))
    return normalised, problems


def _check_sku(value: Any, context: RowContext) -> str:
    sku = _required_text(value, "every row needs a sku")
    if len(sku) > MAX_SKU_LENGTH:
        raise ValueError(f"is {len(sku)} characters long; at most {MAX_SKU_LENGTH}")
    # The sku names output files and keys: path separators or control characters would escape them.
    if _UNFIT_FOR_FILE_NAME.search(sku) or sku in (".", ".."):
        raise ValueError(f"{sku!r} cannot name a file (no '/', '\\', control characters, '.' or '..')")
    return sku


def _check_image(value: Any, context: RowContext) -> str:
    return _resolve_location(_required_text(value, "every row needs an image"), context)


def _check_reference(value: Any, context: RowContext) -> str | None:
    text = _optional_text(value)
    return None if text is None else _resolve_location(text, context)


def _check_treatment(value: Any, context: RowContext) -> Treatment:
    if isinstance(value, Treatment):
        return value
    text = _required_text(value, "expected remove, color or scene").lower()
    treatment = _TREATMENTS.get(text)
    if treatment is None:
        raise ValueError(f"{text!r} is not a treatment (expected remove, color or scene)")
    return treatment


def _check_color(value: Any, context: RowContext) -> RGB | None:
    return parse_color(value)


def _check_prompt(value: Any, context: RowContext) -> str | None:
    return _optional_text(value)


def _check_vendor(value: Any, context: RowContext) -> str | None:
    text = _optional_text(value)
    if text is None:
        return None
    if text.lower() not in VENDOR_NAMES:
        raise ValueError(f"{text!r} is not a vendor (expected one of {', '.join(VENDOR_NAMES)})")
    return text.lower()


def _check_output_format(value: Any, context: RowContext) -> str | None:
    text = _optional_text(value)
    if text is None:
        return None
    fmt = text.lower().lstrip(".")
    fmt = _OUTPUT_FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"{text!r} is not an output format (expected png, jpeg or webp)")
    return fmt


_OPTIONAL: Final = frozenset({"color", "prompt", "reference", "vendor", "output_format"})
_TREATMENTS: Final = {
    **{treatment.value: treatment for treatment in Treatment},
    **{alias: Treatment(name) for alias, name in _TREATMENT_ALIASES.items()},
}
_CHECKS: Final[tuple[tuple[str, Callable[[Any, RowContext], Any]], ...]] = (
    ("sku", _check_sku),
    ("image", _check_image),
    ("treatment", _check_treatment),
    ("color", _check_color),
    ("prompt", _check_prompt),
    ("reference", _check_reference),
    ("vendor", _check_vendor),
    ("output_format", _check_output_format),
)


def _optional_text(value: Any) -> str | None:
    if type(value) is str:  # the common case first: this runs for every cell of every row
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not text")
    text = str(value).strip()
    return text or None


def _required_text(value: Any, why: str) -> str:
    text = _optional_text(value)
    if text is None:
        raise ValueError(f"missing; {why}")
    return text


def _resolve_location(text: str, context: RowContext) -> str:
    """Normalise an image/reference: URLs and store URIs as given, paths made absolute."""
    scheme = locations.scheme_of(text)
    if scheme in _NOT_STORAGE_SCHEMES:
        raise ValueError(
            f"{text[:60]!r}: {scheme}:// is not supported (use a path, an http(s) URL or an object-storage URI)"
        )
    if scheme is not None and scheme != "file":
        return text  # http(s) URL or object-storage URI
    if scheme is None and locations.has_bare_scheme(text):
        raise ValueError(f"{text[:60]!r} is not a path, an http(s) URL or an object-storage URI")
    local_base = context.local_base
    if scheme == "file":
        path = str(locations.file_uri_to_path(text))
    elif os.path.isabs(text):
        path = text
    elif local_base is not None:
        path = os.path.normpath(os.path.join(local_base, text))
    else:
        assert context.base is not None
        return str(locations.join(context.base, text))  # relative to a manifest in object storage
    if context.check_files and not os.path.isfile(path):
        raise ValueError(f"{text!r} does not exist (looked for {path})")
    return path
