"""Whether an existing file is one noisestat wrote, so that a single-file output (a camera profile, a
model, a checkpoint, a reconstruction, a plot) replaces only what noisestat itself wrote and never a
file of the user's that happens to carry the same name.

Each of noisestat's single-file writers leaves a mark inside its format, and each mark is read here
with the format's own structure (not a search of the bytes, which a user's file could match):

* JSON (a camera profile): a top-level ``"written_by": "noisestat ..."``;
* TIFF (a reconstruction, a profile's pixel maps): ``noisestat`` in the first page's description or
  in the ImageJ ``Info`` entry;
* NumPy ``.npz`` (a pixel classifier): a ``header`` array whose JSON names a ``noisestat-`` format;
* a PyTorch zip checkpoint (a label-free model, a learned codec): its pickled dict's ``format``
  string, ``noisestat-...``;
* PNG (a plot): the ``Software`` text chunk, ``noisestat ...``.

Anything else, or a file that cannot be read as its format, is the user's.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

__all__ = ["written_by_noisestat", "WRITTEN_BY"]

#: The mark noisestat's JSON and PNG outputs carry (``written_by`` / ``Software``), with its version.
WRITTEN_BY = "noisestat"

_JSON_LIMIT = 64 << 20   # a profile is a few kilobytes; a larger "JSON" file is not one of ours
_MEMBER_LIMIT = 16 << 20  # the header or pickle member read from a zip archive


def _json(path: Path) -> bool:
    if path.stat().st_size > _JSON_LIMIT:
        return False
    data = json.loads(path.read_text(encoding="utf-8"))
    return isinstance(data, dict) and str(data.get("written_by", "")).startswith(WRITTEN_BY)


def _tiff(path: Path) -> bool:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        texts = [page.description or ""]
        info = (tif.imagej_metadata or {}).get("Info") if tif.is_imagej else None
        texts.append(info if isinstance(info, str) else "")
    return any(WRITTEN_BY in t for t in texts)


def _zip(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        if "header.npy" in infos and infos["header.npy"].file_size <= _MEMBER_LIMIT:
            import io

            import numpy as np

            header = np.load(io.BytesIO(archive.read("header.npy")), allow_pickle=False)
            data = json.loads(header.tobytes().decode("utf-8"))
            return isinstance(data, dict) and str(data.get("format", "")).startswith(f"{WRITTEN_BY}-")
        pickles = [i for name, i in infos.items() if name.endswith("/data.pkl")]
        if len(pickles) == 1 and pickles[0].file_size <= _MEMBER_LIMIT:
            # torch.save's archive: the checkpoint dict's "format" value is a short unicode string in
            # the pickle; read as pickle opcodes (pickletools), never unpickled
            import pickletools

            strings = [arg for op, arg, _ in pickletools.genops(archive.read(pickles[0].filename))
                       if isinstance(arg, str)]
            return any(a == "format" and b.startswith(f"{WRITTEN_BY}-") for a, b in zip(strings, strings[1:]))
    return False


def _png(path: Path) -> bool:
    from PIL import Image

    with Image.open(path) as image:
        return str(image.info.get("Software", "")).startswith(WRITTEN_BY)


def written_by_noisestat(path: str | os.PathLike) -> bool:
    """True when ``path`` is a file noisestat wrote (module docstring), False for anything else,
    a file that cannot be read included.

    Examples
    --------
    >>> import json, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.json").write_text(json.dumps({"written_by": "noisestat 1.0", "gain_dn_per_e": 1}))
    >>> _ = (folder / "b.json").write_text(json.dumps({"gain_dn_per_e": 1}))
    >>> written_by_noisestat(folder / "a.json"), written_by_noisestat(folder / "b.json")
    (True, False)
    """
    path = Path(path)
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            head = handle.read(8)
        if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff(path)
        if head[:4] == b"PK\x03\x04":
            return _zip(path)
        if head == b"\x89PNG\r\n\x1a\n":
            return _png(path)
        if head.lstrip()[:1] == b"{":
            return _json(path)
    except Exception:  # noqa: BLE001 - a file that does not read as its format is not one of ours
        return False
    return False
