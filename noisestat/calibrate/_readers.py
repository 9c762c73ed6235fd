"""Readers of flat-field series: EMVA 1288 descriptor files and plain multi-page TIFF stacks.

Both give a :class:`FlatFieldSeries`: bright stacks at several light levels, each with the dark
stack taken at the same exposure time, and optionally a spatial set (many frames at one level).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io._files import _read_any, file_inside, read_json_object
from ..errors import InputError

__all__ = ["Level", "FlatFieldSeries", "read_emva_descriptor", "read_stacks", "MIN_SPATIAL_FRAMES"]

# A spatial set has more frames than a temporal pair (EMVA 1288 tells them apart that way); its
# temporal noise is removed as var / L, so any L >= 3 works, though the standard asks for L >= 100.
MIN_SPATIAL_FRAMES = 3


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


def _read_frame(path: Path, shape, bit_depth, where: str = "") -> np.ndarray:
    """One frame of a descriptor: a 2D integer image of ``shape`` whose values fit ``bit_depth`` bits."""
    frame = _check_stack(np.squeeze(_read_any(path)), str(path), shape, min_frames=1)[0]
    if bit_depth is not None and frame.size:
        top, low = int(frame.max()), int(frame.min())
        if top > 2**bit_depth - 1:
            raise InputError(f"{path}: values up to {top}, above the {bit_depth}-bit range the descriptor declares "
                             f"(max {2**bit_depth - 1}){where}: a wrong bit depth in its 'n' line, or scaled frames")
        if low < 0:
            raise InputError(f"{path}: negative value {low}; camera counts are >= 0")
    return frame



def _frame_path(descriptor: Path, relative: str, where: str) -> Path:
    """The frame file an ``i`` line names, which must lie inside the descriptor's folder
    (:func:`~noisestat.io._files.file_inside`)."""
    return file_inside(descriptor.parent, relative, where=where, what="frame path", owner="the descriptor")


def _check_unique(path: Path, blocks: list[dict]) -> None:
    """Refuse a frame file listed twice and two temporal sets of the same level."""
    seen = {}
    for block in blocks:
        for f in block["files"]:
            if f in seen:
                raise InputError(f"{path}: frame {f} is listed twice (lines {seen[f]} and {block['line']}); "
                                 f"each frame must be a separate exposure")
            seen[f] = block["line"]
    levels = {}
    for block in blocks:
        if len(block["files"]) > 2:
            continue  # a spatial set, told apart by its frame count
        key = (block["kind"], block["exposure_ns"], block["photons"])
        if key in levels:
            what = (f"bright level 'b {block['exposure_ns']:g} {block['photons']:g}'" if block["kind"] == "b"
                    else f"dark level 'd {block['exposure_ns']:g}'")
            raise InputError(f"{path}: {what} appears twice (lines {levels[key]} and {block['line']}); "
                             f"one temporal set per exposure time and photon count")
        levels[key] = block["line"]


def _check_not_a_copy(frame: np.ndarray, name, digests: dict) -> None:
    """Refuse a frame whose pixels equal another frame's: a copied file, not a second exposure
    (two frames of temporal noise never agree in every pixel). Constant frames (fully saturated)
    may legitimately agree and are not checked."""
    if frame.size and frame.min() == frame.max():
        return
    digest = hashlib.sha256(np.ascontiguousarray(frame).tobytes()).hexdigest()
    if digest in digests:
        raise InputError(f"{name}: has exactly the pixel values of {digests[digest]}: the same exposure saved twice, "
                         f"not two frames")
    digests[digest] = name


def read_emva_descriptor(path: str | os.PathLike) -> FlatFieldSeries:
    """Read an EMVA 1288 descriptor file (release 3.0 / 4.0 style) and its frames.

    The format: ``v VERSION``; ``n BITS WIDTH HEIGHT``; ``b EXPOSURE_NS PHOTONS`` starts a bright
    level and ``d EXPOSURE_NS`` a dark one, each followed by ``i PATH`` lines naming its frames
    (paths relative to the descriptor, with ``/`` or Windows ``\\`` separators); ``#`` starts a
    comment. A bright level with more than two frames is the spatial set; so is the dark level
    with more than two frames. A dark set shared by several bright levels (one exposure time,
    several light levels) is read once: the levels hold the same array.

    Frame paths must resolve, symbolic links followed, to files inside the descriptor's folder.

    Raises
    ------
    InputError
        A malformed line (an ``n`` line outside 1 to 32 bits or without a positive size), a frame
        path that is absolute or leads out of the descriptor's folder, a frame that is missing or
        unreadable or holds values above the declared bit depth (or below 0), a frame file listed twice or two frames with the
        same pixels (one exposure saved twice), two temporal sets of one level (same exposure
        time and photon count, or two dark sets of one exposure time), frames of different
        shapes, a level with fewer than two frames, or bright levels without matching dark frames.
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
                if not (1 <= bits <= 32 and width > 0 and height > 0):
                    raise InputError(f"{where}: 'n BITS WIDTH HEIGHT' needs 1 to 32 bits and a positive size; "
                                     f"got {raw.strip()!r}")
            elif key == "b":
                blocks.append({"kind": "b", "exposure_ns": float(fields[0]), "photons": float(fields[1]),
                               "files": [], "line": number})
            elif key == "d":
                blocks.append({"kind": "d", "exposure_ns": float(fields[0]), "photons": 0.0, "files": [],
                               "line": number})
            elif key == "i":
                if not blocks:
                    raise InputError(f"{where}: image line before any 'b' or 'd' line")
                blocks[-1]["files"].append(_frame_path(path, " ".join(fields), where))
            else:
                raise InputError(f"{where}: unknown line type {key!r} (expected v, n, b, d or i)")
        except (ValueError, IndexError):
            raise InputError(f"{where}: cannot read {raw.strip()!r}") from None
    if bits is None:
        raise InputError(f"{path}: no 'n BITS WIDTH HEIGHT' line")
    _check_unique(path, blocks)
    missing = [str(f) for b in blocks for f in b["files"] if not f.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"{path}: names missing frame {missing[0]}{more}")
    shape = (height, width)

    loaded = {}    # block line -> stack: a dark set shared by several levels is read once, one array
    digests = {}   # frame content -> file, to catch one exposure saved under two names

    def stack(block):
        if block["line"] in loaded:
            return loaded[block["line"]]
        frames = [_read_frame(f, shape, bits, f" (listed on line {block['line']} of {path.name})")
                  for f in block["files"]]
        name = f"{path.name} line {block['line']}"
        if not frames:
            raise InputError(f"{path}, line {block['line']}: level has no 'i' image lines")
        for f, frame in zip(block["files"], frames):
            _check_not_a_copy(frame, f, digests)
        loaded[block["line"]] = _check_stack(np.stack(frames), name, shape)
        return loaded[block["line"]]

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
                bit_depth: int | None = None, spatial_flat: str | os.PathLike | None = None,
                spatial_dark: str | os.PathLike | None = None) -> FlatFieldSeries:
    """Read one multi-page TIFF per light level and the dark stacks.

    Parameters
    ----------
    flats : sequence of path
        One stack per light level, at least two frames each.
    darks : sequence of path
        Dark stacks: one for all levels, or one per exposure time (matched through the sidecar).
    sidecar : path, optional
        JSON object mapping file names to ``{"exposure_s": ..., "photons": ...}``,
        e.g. ``{"level_00.tif": {"exposure_s": 0.01, "photons": 1200}}``. Each key is optional,
        but a key given for one level stack must be given for every level stack.
    bit_depth : int, optional
        Digitiser bits, when known.
    spatial_flat, spatial_dark : path, optional
        The spatial set for DSNU1288 and PRNU1288 (EMVA 1288): a stack of many frames (at least 3;
        the standard asks for 100 or more) at one light level, about 50 % of saturation, and a dark
        stack of as many frames at the same exposure time. Given together.

    Raises
    ------
    InputError
        A stack that cannot be read or has too few frames, a file given twice, two level stacks
        with the same exposure time and photon count, a sidecar without an entry or a key that
        other level stacks have, or a spatial stack without its partner.
    """
    flats = [Path(f) for f in flats]
    darks = [Path(d) for d in darks]
    if not flats:
        raise InputError("no flat-field stack given")
    if not darks:
        raise InputError("no dark stack given: the offset and dark noise come from frames without light")
    if (spatial_flat is None) != (spatial_dark is None):
        given = spatial_flat if spatial_flat is not None else spatial_dark
        raise InputError(f"{given}: a spatial set needs both a bright and a dark stack (spatial_flat and "
                         f"spatial_dark, --spatial-flat and --spatial-dark)")
    roles = [(f, "level stack") for f in flats] + [(d, "dark stack") for d in darks]
    roles += [(Path(p), role) for p, role in ((spatial_flat, "spatial stack"), (spatial_dark, "spatial dark stack"))
              if p is not None]
    seen = {}
    for f, role in roles:
        key = f.resolve()
        if key in seen:
            raise InputError(f"{f}: given twice (as {seen[key]} and as {role}); each stack must hold other exposures")
        seen[key] = role
    meta = {}
    if sidecar is not None:
        sidecar = Path(sidecar)
        meta = read_json_object(sidecar, what="sidecar")

    def entry(p: Path):
        value = meta.get(p.name, meta.get(str(p)))
        if value is not None and not isinstance(value, dict):
            raise InputError(f"{sidecar}: {p.name}: entry must be an object like "
                             f"{{\"exposure_s\": 0.01, \"photons\": 1200}}; got {value!r}")
        return value

    def info(p: Path, key):
        e = entry(p) or {}
        value = e.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            raise InputError(f"{sidecar}: {p.name}: {key} must be a finite number >= 0; got {value!r}")
        return None if value is None else float(value)

    if meta:
        for key in ("exposure_s", "photons"):
            have = [f for f in flats if info(f, key) is not None]
            lacking = [f for f in flats if info(f, key) is None]
            if have and lacking:
                f = lacking[0]
                why = "has no entry" if entry(f) is None else f"has no {key!r}"
                raise InputError(f"{sidecar}: {f.name} {why} (key {key!r}), which {have[0].name} and "
                                 f"{len(have) - 1} other stack(s) have; give {key} for every level stack or for none")
    pairs = {}
    for f in flats:
        key = (info(f, "exposure_s"), info(f, "photons"))
        if None not in key:
            if key in pairs:
                raise InputError(f"{f}: same exposure_s {key[0]:g} and photons {key[1]:g} as {pairs[key].name} "
                                 f"in {sidecar}: two stacks of one level (give each level once)")
            pairs[key] = f

    first = _read_stack(flats[0], None)
    shape = first.shape[1:]
    digests = {}
    dark_stacks = [(d, _read_stack(d, shape)) for d in darks]
    for d, s in dark_stacks:
        _check_stack_not_a_copy(s, d, digests)
    levels = []
    for f in flats:
        stack = first if f == flats[0] else _read_stack(f, shape)
        _check_stack_not_a_copy(stack, f, digests)
        exposure = info(f, "exposure_s")
        if len(dark_stacks) == 1:
            dark = dark_stacks[0][1]
        else:
            same = [s for d, s in dark_stacks if info(d, "exposure_s") == exposure]
            if exposure is None or not same:
                raise InputError(f"{f}: several dark stacks given but none with this stack's exposure time "
                                 f"({exposure}); give exposure_s for every file in the sidecar")
            if len(same) > 1:
                raise InputError(f"{f}: {len(same)} dark stacks have this stack's exposure time ({exposure:g} s) "
                                 f"in {sidecar}; give one dark stack per exposure time")
            dark = same[0]
        levels.append(Level(stack, dark, exposure, info(f, "photons"), f.name))
    spatial = None
    if spatial_flat is not None:
        sf, sd = Path(spatial_flat), Path(spatial_dark)
        bright = _read_stack(sf, shape, min_frames=MIN_SPATIAL_FRAMES)
        dark = _read_stack(sd, shape, min_frames=MIN_SPATIAL_FRAMES)
        _check_stack_not_a_copy(bright, sf, digests)
        _check_stack_not_a_copy(dark, sd, digests)
        spatial = Level(bright, dark, info(sf, "exposure_s"), info(sf, "photons"), sf.name)
    return FlatFieldSeries(tuple(levels), bit_depth, spatial, ", ".join(str(f) for f in flats))


def _check_stack_not_a_copy(stack: np.ndarray, name, digests: dict) -> None:
    """:func:`_check_not_a_copy` for every frame of a stack (frames named ``FILE page N``)."""
    for k, frame in enumerate(stack):
        _check_not_a_copy(frame, f"{name} page {k + 1}", digests)
