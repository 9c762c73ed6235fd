"""A dataset: a CSV listing the fields of one acquisition campaign, and the folder its assessment goes to.

The CSV has a header and one row per field. Columns: ``image`` (required), ``camera``, ``labels`` and
``model`` and ``target`` (optional). Relative paths resolve against the CSV's folder; an empty cell takes
the command-line default (``--camera``, ``--labels``, ``--model``, ``--target``, the ``--predictor-*``
options). Every row
is checked before any work; each fault is one line naming the CSV, the row (as a spreadsheet numbers
it: the header is row 1) and the column.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, OutputError
from ._atomic import _make_parent, write_json_atomic
from ._outputs import OUTPUT_MARKER, check_output_dir, clean_stale, is_noisestat_output

__all__ = ["DATASET_COLUMNS", "DatasetField", "read_dataset", "field_names", "prepare_dataset_dir"]

#: The columns a dataset CSV may have (``image`` is required).
DATASET_COLUMNS = ("image", "camera", "labels", "model", "target")

# Names a field's folder may not take: the dataset's own outputs beside the fields.
_RESERVED = {"summary.json", "fields.csv", "report.html", OUTPUT_MARKER}


@dataclass(frozen=True)
class DatasetField:
    """One field of a dataset: its folder's name, its row in the CSV and its inputs (absolute paths;
    exactly one of ``labels``, ``model``, ``predictor_command`` and ``predictor_python``)."""

    name: str
    row: int
    image: str
    camera: str
    labels: str | None = None
    model: str | None = None
    predictor_command: str | None = None
    predictor_python: str | None = None
    target: str | None = None

    def inputs(self) -> dict:
        """The inputs given for this field, by role (files and predictor options)."""
        return {k: v for k, v in (("image", self.image), ("camera", self.camera), ("labels", self.labels),
                                  ("model", self.model), ("predictor_command", self.predictor_command),
                                  ("predictor_python", self.predictor_python), ("target", self.target))
                if v is not None}


def _safe(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "field"
    return name[:80]


def _stem(image: str) -> str:
    name = Path(image).name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return Path(name).stem


def _distinct_stems(images, folder) -> list[str]:
    """Each image's stem, or, for images whose stems clash (``f1/raw.tif``, ``f2/raw.tif``), its path
    from the CSV's ``folder`` (its parent folder's name when outside it) without the extension:
    ``f1_raw``, ``f2_raw``.

    Examples
    --------
    >>> _distinct_stems(["/d/a.tif", "/d/f1/raw.tif", "/d/f2/raw.tif", "/e/g/raw.tif"], "/d")
    ['a', 'f1_raw', 'f2_raw', 'g_raw']
    """
    stems = [_stem(image) for image in images]
    counts = Counter(_safe(stem).lower() for stem in stems)
    out = []
    for image, stem in zip(images, stems):
        if counts[_safe(stem).lower()] > 1:
            try:
                relative = Path(os.path.relpath(image, folder))
            except ValueError:  # another drive
                relative = Path(os.pardir)
            if relative.parts and relative.parts[0] == os.pardir:
                relative = Path(Path(image).parent.name) / Path(image).name
            stem = "_".join([*relative.parent.parts, stem])
        out.append(stem)
    return out


def field_names(stems) -> list[str]:
    """Each image stem as a folder name: only letters, digits, ``.``, ``_`` and ``-``; a name already
    taken (ignoring case, as some file systems do) or reserved gets ``-2``, ``-3``, ... in row order.

    Examples
    --------
    >>> field_names(["a b", "A_b", "summary", ".."])
    ['a_b', 'A_b-2', 'summary', 'field']
    """
    taken, names = {r.lower() for r in _RESERVED}, []
    for stem in stems:
        base = _safe(stem)
        name, k = base, 1
        while name.lower() in taken:
            k += 1
            name = f"{base}-{k}"
        taken.add(name.lower())
        names.append(name)
    return names


def read_dataset(path, *, camera=None, labels=None, model=None, target=None, predictor_command=None,
                 predictor_python=None) -> tuple[DatasetField, ...]:
    """The fields of the dataset CSV ``path``, each row checked (module docstring); the keywords are the
    command-line defaults for empty cells.

    Raises
    ------
    InputError
        One line naming the CSV, the row and the column: a missing file, an unknown column, no image,
        no camera, a field with no model, labels or predictor (or both a model and labels), the same
        image twice.
    """
    shown = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise InputError(f"{shown}: no such dataset file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{shown}: cannot read the dataset CSV ({getattr(exc, 'strerror', None) or exc})") from None
    rows = [(number, row) for number, row in enumerate(rows, 1) if any(cell.strip() for cell in row)]
    if not rows:
        raise InputError(f"{shown}: empty; a dataset CSV needs a header (image, and optionally "
                         f"{', '.join(DATASET_COLUMNS[1:])}) and one row per field")
    header_row, header = rows[0]
    header = [h.strip().lower() for h in header]
    for h in header:
        if h not in DATASET_COLUMNS:
            raise InputError(f"{shown} row {header_row}: unknown column {h!r}; the columns are "
                             f"{', '.join(DATASET_COLUMNS)} (image required)")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise InputError(f"{shown} row {header_row}: column {twice[0]!r} appears twice in the header")
    if "image" not in header:
        raise InputError(f"{shown} row {header_row}: no 'image' column in the header; the columns are "
                         f"{', '.join(DATASET_COLUMNS)} (image required)")
    if len(rows) == 1:
        raise InputError(f"{shown}: no field listed under the header")
    for flag, default in (("--camera", camera), ("--labels", labels), ("--model", model), ("--target", target)):
        if default is not None and not Path(default).exists():
            raise InputError(f"{flag} {default}: no such file (the default of {shown}'s empty cells)")
    folder = Path(path).resolve().parent
    defaults = {"camera": camera, "labels": labels, "model": model}
    given_predictor = [(k, v) for k, v in (("--model", model), ("--labels", labels),
                                           ("--predictor-command", predictor_command),
                                           ("--predictor-python", predictor_python)) if v is not None]
    if len(given_predictor) > 1:
        raise InputError(f"give at most one of --model, --labels, --predictor-command and --predictor-python as the "
                         f"dataset's default; got {' and '.join(k for k, _ in given_predictor)}")
    fields, seen = [], {}
    for number, row in rows[1:]:
        if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
            raise InputError(f"{shown} row {number}: {len(row)} cells for the {len(header)} columns of the header")
        cells = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
        where = f"{shown} row {number}"
        if not cells.get("image"):
            raise InputError(f"{where}, column image: empty; every field needs its raw image")
        values = {}
        for column in DATASET_COLUMNS:
            cell = cells.get(column, "")
            if cell:
                file = Path(cell).expanduser()
                file = file if file.is_absolute() else folder / file
                if not file.exists():
                    raise InputError(f"{where}, column {column}: no such file: {cell} (looked for {file})")
                values[column] = os.path.abspath(file)
        if cells.get("labels") and cells.get("model"):
            raise InputError(f"{where}, columns labels and model: give one of them per field, not both")
        if "camera" not in values:
            if camera is None:
                raise InputError(f"{where}, column camera: empty and no --camera given; every field needs its "
                                 f"camera profile")
            values["camera"] = str(Path(camera).resolve())
        source = {}
        if "labels" in values or "model" in values:
            source = {k: values[k] for k in ("labels", "model") if k in values}
        elif labels is not None or model is not None:
            source = {k: str(Path(defaults[k]).resolve()) for k in ("labels", "model") if defaults[k] is not None}
        elif predictor_command is not None:
            source = {"predictor_command": predictor_command}
        elif predictor_python is not None:
            source = {"predictor_python": predictor_python}
        else:
            raise InputError(f"{where}, columns model and labels: both empty and no --model, --labels, "
                             f"--predictor-command or --predictor-python given; every field needs its model or labels")
        if "target" not in values and target is not None:
            values["target"] = str(Path(target).resolve())
        if "target" in values:
            source["target"] = values["target"]
        image = values["image"]
        key = os.path.normcase(os.path.realpath(image))
        if key in seen:
            raise InputError(f"{where}, column image: {cells['image']} is the image of row {seen[key]} already; "
                             f"list each field once")
        seen[key] = number
        fields.append((number, image, values["camera"], source))
    names = field_names(_distinct_stems([image for _, image, _, _ in fields], folder))
    return tuple(DatasetField(name, number, image, cam, **source)
                 for name, (number, image, cam, source) in zip(names, fields))


def mark_dataset_files(out: Path, names) -> None:
    """Add ``names`` (files noisestat wrote at the top of the dataset's folder) to its marker's list."""
    import json

    marker = Path(out) / OUTPUT_MARKER
    data = json.loads(marker.read_text(encoding="utf-8"))
    data["files"] = sorted(set(data.get("files") or []) | set(names))
    write_json_atomic(marker, data)


def prepare_dataset_dir(path, *, inputs=(), command: str = "assess-dataset") -> Path:
    """The dataset's output folder, made ready to receive (or resume) an assessment, and returned.

    Allowed as :func:`check_output_dir` allows: a new or empty folder, or one noisestat wrote. A folder
    of an earlier run of ``command`` is kept as it is (its finished fields are reused); a folder
    noisestat wrote for another command is emptied first (it is noisestat's own). The marker file
    (:data:`OUTPUT_MARKER`) is written before anything else, so that the folder is recognised as
    noisestat's even when the run is killed at once.
    """
    import json
    import shutil
    import time

    from .. import __version__

    out = check_output_dir(path, inputs=inputs)
    clean_stale(out)
    if out.is_dir() and is_noisestat_output(out):
        try:
            marker = json.loads((out / OUTPUT_MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            marker = {}
        if marker.get("command") != command:
            shutil.rmtree(out)
    try:
        _make_parent(out, os.fspath(path))
        out.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{os.fspath(path)}: cannot create the output folder ({exc.strerror or exc})") from exc
    if not (out / OUTPUT_MARKER).exists():
        # "files": what noisestat wrote at the top of the folder (listed by mark_dataset_files at the end);
        # each field's folder lists its own
        write_json_atomic(out / OUTPUT_MARKER, {"noisestat": __version__, "command": command, "files": [],
                                                "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return out
