"""What a file says besides its pixels: the pixel or voxel size and its unit, and the file's axes.

The units OME-XML, ImageJ, OME-Zarr and PNG write are recognised and converted to one another;
:class:`PixelSize` holds the result, :class:`ImageInfo` what a reader learnt about a file.
"""

from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

import tifffile

__all__ = ["PixelSize", "ImageInfo", "spacing"]


@dataclass(frozen=True)
class PixelSize:
    """The physical size of one pixel: ``x`` (along columns) and ``y`` (along rows) in ``unit``;
    for a volume also ``z`` (between slices, in the same unit), None when the file does not say.

    Examples
    --------
    >>> PixelSize(0.5, 0.5, "µm").to_dict()
    {'x': 0.5, 'y': 0.5, 'unit': 'µm'}
    >>> PixelSize(0.5, 0.5, "µm", z=2.0).to_dict()
    {'x': 0.5, 'y': 0.5, 'unit': 'µm', 'z': 2.0}
    """

    x: float
    y: float
    unit: str
    z: float | None = None

    def to_dict(self) -> dict:
        """``x``, ``y``, ``unit``, and ``z`` only when known (so 2D files give what they always gave)."""
        out = asdict(self)
        if out["z"] is None:
            del out["z"]
        return out


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`read_image_info` or :func:`open_image` learnt about a file besides its pixels.

    ``axes`` and ``shape`` describe the file as stored (tifffile's series axes, or the OME-Zarr
    axes in capitals: ``Y``, ``X``, ``C`` channel, ``S`` sample such as RGB, ``Z``, ``T``,
    ``I``/``Q`` a plain stack of pages, ...); ``channel`` and ``plane`` the selection read (None
    when not given); ``pixel_size`` a :class:`PixelSize` of the array returned, or None when the
    file does not say (``z`` only for a volume); ``ndim`` 2 for a plane ``(rows, cols)``, 3 for a
    volume ``(z, rows, cols)``.
    """

    path: str
    axes: str
    shape: tuple[int, ...]
    channel: int | None
    plane: int | None
    pixel_size: PixelSize | None
    ndim: int = 2

    @property
    def spacing(self) -> tuple[float, ...] | None:
        """The physical size along each axis of the array read: see :func:`spacing`."""
        return spacing(self)


def spacing(info: ImageInfo) -> tuple[float, ...] | None:
    """The physical size of a pixel along each axis of the array read, in ``info.pixel_size.unit``:
    ``(y, x)`` for a plane, ``(z, y, x)`` for a volume; None when the file does not give them all.

    Examples
    --------
    >>> info = ImageInfo("v.tif", "ZYX", (9, 64, 64), None, None, PixelSize(0.5, 0.5, "µm", z=2.0), ndim=3)
    >>> spacing(info)
    (2.0, 0.5, 0.5)
    >>> from dataclasses import replace
    >>> spacing(replace(info, pixel_size=PixelSize(0.5, 0.5, "µm"))) is None
    True
    """
    size = info.pixel_size
    if size is None:
        return None
    if info.ndim == 2:
        return (float(size.y), float(size.x))
    return None if size.z is None else (float(size.z), float(size.y), float(size.x))


#: Micrometres per unit, for the units OME-XML, ImageJ and OME-Zarr write; others are kept as given.
_MICROMETRES = {"µm": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "pm": 1e-6, "Å": 1e-4}
_UNIT_NAMES = {"um": "µm", "micron": "µm", "microns": "µm", "\\u00b5m": "µm", "μm": "µm",  # Greek mu
               "nanometer": "nm", "millimeter": "mm", "centimeter": "cm", "meter": "m",
               # the UDUNITS-2 names OME-Zarr uses
               "micrometer": "µm", "picometer": "pm", "angstrom": "Å", "nanometre": "nm", "micrometre": "µm"}


def _unit_name(unit) -> str | None:
    text = str(unit).strip()
    return _UNIT_NAMES.get(text.lower(), text) if text and text.lower() not in ("pixel", "pixels", "none") else None


def _in_unit(value: float, unit: str, target: str) -> float | None:
    """``value`` in ``unit`` expressed in ``target``; None when the two cannot be compared."""
    if unit == target:
        return float(value)
    if unit in _MICROMETRES and target in _MICROMETRES:
        return float(value) * _MICROMETRES[unit] / _MICROMETRES[target]
    return None


def _pixel_size(x, y, unit_x, unit_y=None, z=None, unit_z=None) -> PixelSize | None:
    """A PixelSize in the unit of ``x`` (y and z converted to it), or None when x or y is unusable."""
    ux, uy = _unit_name(unit_x), _unit_name(unit_x if unit_y is None else unit_y)
    if ux is None or uy is None or x is None or y is None:
        return None
    y = _in_unit(y, uy, ux)
    if y is None or not (float(x) > 0 and y > 0):
        return None
    if z is not None:
        uz = _unit_name(unit_x if unit_z is None else unit_z)
        z = None if uz is None else _in_unit(z, uz, ux)
        z = z if z is not None and z > 0 else None
    return PixelSize(float(x), y, ux, z)


def _ome_pixel_size(xml_text: str) -> PixelSize | None:
    """PhysicalSizeX/Y/Z and their units from the first Pixels element of OME-XML."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None or "PhysicalSizeX" not in pixels.attrib:
        return None
    try:
        x = float(pixels.get("PhysicalSizeX"))
        y = float(pixels.get("PhysicalSizeY", x))
        z = float(pixels.get("PhysicalSizeZ")) if "PhysicalSizeZ" in pixels.attrib else None
    except ValueError:
        return None
    # OME's default unit is the micrometre
    return _pixel_size(x, y, pixels.get("PhysicalSizeXUnit", "µm"), pixels.get("PhysicalSizeYUnit", "µm"),
                       z, pixels.get("PhysicalSizeZUnit", "µm"))


def _tiff_pixel_size(tif: tifffile.TiffFile) -> PixelSize | None:
    """OME PhysicalSize, else XResolution/YResolution with ImageJ's ``unit`` (and ``spacing`` for
    the slices) or ResolutionUnit."""
    if tif.is_ome and tif.ome_metadata:
        size = _ome_pixel_size(tif.ome_metadata)
        if size is not None:
            return size
    tags = tif.pages.first.tags
    if "XResolution" not in tags:
        return None
    num, den = tags["XResolution"].value
    ynum, yden = tags["YResolution"].value if "YResolution" in tags else (num, den)
    if not (num and den and ynum and yden):
        return None
    x, y = den / num, yden / ynum  # resolution is pixels per unit
    imagej = (tif.imagej_metadata or {}) if tif.is_imagej else {}
    unit = _unit_name(imagej.get("unit", "")) if tif.is_imagej else None
    if unit is None:
        res_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2  # TIFF's default: inch
        per_unit_um = {2: 25400.0, 3: 10000.0}.get(res_unit)
        if per_unit_um is None:  # 1 = no absolute unit
            return None
        return PixelSize(float(x * per_unit_um), float(y * per_unit_um), "µm")
    try:
        z = float(imagej["spacing"]) if "spacing" in imagej else None  # ImageJ: slice spacing in ``unit``
    except (TypeError, ValueError):
        z = None
    return PixelSize(float(x), float(y), unit, z if z is not None and z > 0 else None)

def _png_pixel_size(path: Path) -> PixelSize | None:
    """The pHYs chunk of a PNG (pixels per metre along x and y) as a pixel size in µm.

    Read by hand: imagecodecs decodes PNG pixels but returns none of its chunks, and noisestat
    does not depend on Pillow for nine bytes of metadata. The chunks before the image data are
    walked (pHYs must precede IDAT); a unit of 0 (aspect ratio only) gives None.
    """
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            while True:
                head = handle.read(8)
                if len(head) < 8:
                    return None
                length, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND"):
                    return None
                if kind == b"pHYs" and length == 9:
                    per_x, per_y, unit = struct.unpack(">IIB", handle.read(9))
                    if unit != 1 or not per_x or not per_y:
                        return None
                    return PixelSize(1e6 / per_x, 1e6 / per_y, "µm")
                handle.seek(length + 4, os.SEEK_CUR)  # the chunk's data and its CRC
    except (OSError, struct.error):
        return None
