"""Readers of flat-field series: EMVA 1288 descriptor files and plain multi-page TIFF stacks.

Both give a :class:`FlatFieldSeries`: bright stacks at several light levels, each with the dark
stack taken at the same exposure time, and optionally a spatial set (many frames at one level).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import numpy as np

from .._io import _read_any, read_json_object
from ..errors import InputError

__all__ = ["Level", "FlatFieldSeries", "read_emva_descriptor", "read_stacks"]


@dataclass(frozen=True)
class Level:
    """Frames at one light level.

    Attributes
    ----------
    bright : ndarray, shape (frames, rows, cols)
    dark : ndarray, shape (frames, rows, cols)
        Dark frames at the same exposure time (no light).
    exposure_s : float or None
    photons : float or None
        Mean number of photons per pixel during the exposure, when known.
    name : str
        Where the frames came from, for messages.
    """

    bright: np.ndarray
    dark: np.ndarray
    exposure_s: float | None = None
    photons: float | None = None
    name: str = ""


@dataclass(frozen=True)
class FlatFieldSeries:
    """A photon-transfer measurement: temporal levels and an optional spatial set."""

    levels: tuple
    bit_depth: int | None = None
    spatial: Level | None = None
    source: str = ""
    kind: str = "stacks"

    @property
    def shape(self) -> tuple[int, int]:
        return self.levels[0].bright.shape[1:]


def _check_stack(stack: np.ndarray, name: str, shape, *, min_frames: int = 2) -> np.ndarray:
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3:
        raise InputError(f"{name}: expected a stack of 2D frames; got shape {stack.shape}")
    if not np.issubdtype(stack.dtype, np.integer):
        raise InputError(f"{name}: frames must hold integer camera counts; got {stack.dtype} "
                         f"(floating-point frames are processed data, not raw output)")
    if shape is not None and stack.shape[1:] != tuple(shape):
        raise InputError(f"{name}: frames must have the shape of the first frame {tuple(shape)}; "
                         f"got {stack.shape[1:]}")
    if stack.shape[0] < min_frames:
        raise InputError(f"{name}: needs at least {min_frames} frames per level for a temporal variance; "
                         f"got {stack.shape[0]}")
    return stack


def _read_frame(path: Path, shape, bit_depth) -> np.ndarray:
    frame = np.squeeze(_read_any(path))
    return _check_stack(frame, str(path), shape, min_frames=1)[0]


def read_emva_descriptor(path: str | os.PathLike) -> FlatFieldSeries:
    """Read an EMVA 1288 descriptor file (release 3.0 / 4.0 style) and its frames.

    The format: ``v VERSION``; ``n BITS WIDTH HEIGHT``; ``b EXPOSURE_NS PHOTONS`` starts a bright
    level and ``d EXPOSURE_NS`` a dark one, each followed by ``i PATH`` lines naming its frames
    (paths relative to the descriptor, with ``/`` or Windows ``\\`` separators); ``#`` starts a
    comment. A bright level with more than two frames is the spatial set; so is the dark level
    with more than two frames.

    Raises
    ------
    InputError
        A malformed line, a frame that is missing or unreadable, frames of different shapes,
        a level with fewer than two frames, or bright levels without matching dark frames.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such EMVA descriptor file")
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text descriptor file") from None
    bits = width = height = None
    blocks: list[dict] = []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, *fields = line.split()
        where = f"{path}, line {number}"
        try:
            if key == "v":
                continue
            if key == "n":
                bits, width, height = (int(v) for v in fields[:3])
            elif key == "b":
                blocks.append({"kind": "b", "exposure_ns": float(fields[0]), "photons": float(fields[1]),
                               "files": [], "line": number})
            elif key == "d":
                blocks.append({"kind": "d", "exposure_ns": float(fields[0]), "photons": 0.0, "files": [],
                               "line": number})
            elif key == "i":
                if not blocks:
                    raise InputError(f"{where}: image line before any 'b' or 'd' line")
                relative = " ".join(fields)
                parts = PureWindowsPath(relative).parts if "\\" in relative else Path(relative).parts
                blocks[-1]["files"].append(path.parent.joinpath(*parts))
            else:
                raise InputError(f"{where}: unknown line type {key!r} (expected v, n, b, d or i)")
        except (ValueError, IndexError):
            raise InputError(f"{where}: cannot read {raw.strip()!r}") from None
    if bits is None:
        raise InputError(f"{path}: no 'n BITS WIDTH HEIGHT' line")
    missing = [str(f) for b in blocks for f in b["files"] if not f.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"{path}: names missing frame {missing[0]}{more}")
    shape = (height, width)

    def stack(block):
        frames = [_read_frame(f, shape, bits) for f in block["files"]]
        name = f"{path.name} line {block['line']}"
        if not frames:
            raise InputError(f"{path}, line {block['line']}: level has no 'i' image lines")
        return _check_stack(np.stack(frames), name, shape)

    bright = [b for b in blocks if b["kind"] == "b"]
    dark = [b for b in blocks if b["kind"] == "d"]
    spatial_bright = [b for b in bright if len(b["files"]) > 2]
    spatial_dark = [b for b in dark if len(b["files"]) > 2]
    temporal_dark = {b["exposure_ns"]: b for b in dark if len(b["files"]) <= 2}
    levels = []
    for b in bright:
        if len(b["files"]) > 2:
            continue
        d = temporal_dark.get(b["exposure_ns"])
        if d is None:
            raise InputError(f"{path}, line {b['line']}: no dark frames ('d {b['exposure_ns']:g}') for this "
                             f"exposure time")
        levels.append(Level(stack(b), stack(d), b["exposure_ns"] * 1e-9, b["photons"],
                            ", ".join(f.name for f in b["files"])))
    spatial = None
    if spatial_bright:
        b = spatial_bright[0]
        d = next((x for x in spatial_dark if x["exposure_ns"] == b["exposure_ns"]), None)
        if d is None:
            raise InputError(f"{path}, line {b['line']}: spatial set without dark frames at its exposure")
        spatial = Level(stack(b), stack(d), b["exposure_ns"] * 1e-9, b["photons"], "spatial set")
    if not levels:
        raise InputError(f"{path}: no temporal level (a 'b' line with two frames and its 'd' line)")
    return FlatFieldSeries(tuple(levels), bits, spatial, str(path), "EMVA 1288 descriptor")


def _read_stack(path: Path, shape, *, min_frames=2) -> np.ndarray:
    return _check_stack(np.asarray(_read_any(path)), str(path), shape, min_frames=min_frames)


def read_stacks(flats, darks, *, sidecar: str | os.PathLike | None = None,
                bit_depth: int | None = None) -> FlatFieldSeries:
    """Read one multi-page TIFF per light level and the dark stacks.

    Parameters
    ----------
    flats : sequence of path
        One stack per light level, at least two frames each.
    darks : sequence of path
        Dark stacks: one for all levels, or one per exposure time (matched through the sidecar).
    sidecar : path, optional
        JSON object mapping file names to ``{"exposure_s": ..., "photons": ...}`` (both optional),
        e.g. ``{"level_00.tif": {"exposure_s": 0.01, "photons": 1200}}``.
    bit_depth : int, optional
        Digitiser bits, when known.
    """
    flats = [Path(f) for f in flats]
    darks = [Path(d) for d in darks]
    if not flats:
        raise InputError("no flat-field stack given")
    if not darks:
        raise InputError("no dark stack given: the offset and dark noise need frames without light")
    meta = {}
    if sidecar is not None:
        sidecar = Path(sidecar)
        meta = read_json_object(sidecar, what="sidecar")

    def info(p: Path, key):
        entry = meta.get(p.name, meta.get(str(p), {}))
        value = entry.get(key) if isinstance(entry, dict) else None
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise InputError(f"{sidecar}: {p.name}: {key} must be a number >= 0; got {value!r}")
        return None if value is None else float(value)

    first = _read_stack(flats[0], None)
    shape = first.shape[1:]
    dark_stacks = [(d, _read_stack(d, shape)) for d in darks]
    levels = []
    for f in flats:
        stack = first if f == flats[0] else _read_stack(f, shape)
        exposure = info(f, "exposure_s")
        if len(dark_stacks) == 1:
            dark = dark_stacks[0][1]
        else:
            same = [s for d, s in dark_stacks if info(d, "exposure_s") == exposure]
            if exposure is None or not same:
                raise InputError(f"{f}: several dark stacks given but none with this stack's exposure time "
                                 f"({exposure}); give exposure_s for every file in the sidecar")
            dark = same[0]
        levels.append(Level(stack, dark, exposure, info(f, "photons"), f.name))
    return FlatFieldSeries(tuple(levels), bit_depth, None, ", ".join(str(f) for f in flats))
