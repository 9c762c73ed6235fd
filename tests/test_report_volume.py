"""The output folder of a 3D volume's assessment: every figure drawn from the volume's projection or
from what was measured, the volume's own figures (orthogonal views, volume differences and their
table, volume in raw against each codec), how each codec coded the volume, tables with a volume's
own 3D parameters (MorphoLibJ's names), warnings in voxels, and the label volumes written."""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
from matplotlib import image as mpimg

import noisestat
from noisestat.measure import PARAMETERS
from noisestat.measure._volume import VOLUME_PARAMETERS, measure_volume_objects
from noisestat.report import FIGURE_NAMES, figure_names, render_figures, segmentation_warnings
from noisestat.report._draw import _pixels
from noisestat.report._tables import write_assessment
from noisestat.report._volumes import (SECOND_ACQUISITION, _report_difference, _report_orthogonal_views,
                                       _report_scatter, volume_differences)
from noisestat.score import FAMILIES

from conftest import CAMERA
from test_engine import _sparse_3d, _volume

_SHAPE = (14, 40, 40)
_BALLS = 3
# Figures that draw the image itself: a volume's must say that they show its projection.
_IMAGE_FIGURES = ("segmentation", "objects_eps", "outside_band")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CODECS = ("lossless", "jpeg:quality=60")
# The volume's figures, in the page's order: one volume_scatter_NN per codec (NN as in labels/).
_NAMES = ("segmentation", "orthogonal_views", "volume_difference", "volume_scatter_01", "volume_scatter_02",
          "globals", "eps_per_parameter", "objects_eps", "outside_band", "ratio_distortion")
_VOLUME_FIGURES = ("orthogonal_views", "volume_difference", "volume_scatter_01", "volume_scatter_02", "globals")


@pytest.fixture(scope="module")
def volume():
    return _volume(shape=_SHAPE, n=_BALLS, seed=0)


@pytest.fixture(scope="module")
def assessment(volume):
    image, truth = volume
    return noisestat.assess(image, CAMERA, list(_CODECS), labels=_sparse_3d(truth), replicas=3)


@pytest.fixture(scope="module")
def folder(assessment, tmp_path_factory):
    return write_assessment(assessment, tmp_path_factory.mktemp("volume") / "out")


@pytest.fixture(scope="module")
def page(folder):
    return (folder / "report.html").read_text(encoding="utf-8")


def _figures(page: str) -> dict:
    """Figure id -> (embedded PNG bytes, caption text) of every figure on the page."""
    out = {}
    for m in re.finditer(r'<figure id="([^"]+)"><img src="data:image/png;base64,([^"]+)"[^>]*>'
                         r"<figcaption>(.*?)</figcaption></figure>", page, re.S):
        out[m.group(1)] = (base64.b64decode(m.group(2)), html.unescape(re.sub(r"<[^>]+>", "", m.group(3))))
    return out


def _csv(path, dicts: bool = False) -> list:
    text = path.read_text()
    return list(csv.DictReader(io.StringIO(text)) if dicts else csv.reader(io.StringIO(text)))


def _tables(page: str) -> list[str]:
    return re.findall(r"<table.*?</table>", page, re.S)


def test_the_volume_is_segmented_into_the_simulated_balls(assessment, volume):
    _, truth = volume
    assert len(assessment.raw) == _BALLS
    # each object's voxel count close to its ball's (the forest draws the edge a voxel either way)
    true_volumes = np.sort(np.bincount(truth.ravel())[1:])
    measured = np.sort(assessment.raw.column("Voxels"))
    assert np.all(np.abs(measured - true_volumes) < 0.15 * true_volumes)


def test_the_whole_output_folder_is_written(folder):
    for name in ("summary.json", "summary.txt", "objects.csv", "objects.parquet", "outside_band.csv",
                 "raw_results.csv", "report.html", "imagej/00_raw.csv", "labels/00_raw.tif"):
        assert (folder / name).is_file(), name
    assert sorted(p.stem for p in (folder / "figures").glob("*.png")) == sorted(_NAMES)


def test_report_references_only_figures_that_exist_and_each_is_a_valid_png(folder, page):
    figures = _figures(page)
    assert list(figures) == [n for n in _NAMES if n in figures] and figures
    for name, (png, _) in figures.items():
        path = folder / "figures" / f"{name}.png"
        assert path.is_file(), name
        data = path.read_bytes()
        assert data == png, f"{name}: the embedded figure is not the file"
        assert data.startswith(_PNG_SIGNATURE)
        pixels = mpimg.imread(io.BytesIO(data), format="png")
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100 and pixels.std() > 0.01, name
    # every other file name the page mentions under figures/ exists too
    for name in re.findall(r"figures/([\w.-]+\.png)", page):
        assert (folder / "figures" / name).is_file(), name
    # a figure left out would have to say so on the page; all are drawn for a volume today
    assert set(figures) == set(_NAMES)


def test_image_figures_say_they_show_the_maximum_intensity_projection(page):
    figures = _figures(page)
    for name in _IMAGE_FIGURES:
        caption = figures[name][1]
        assert "maximum-intensity projection along z" in caption, name
        assert "label volume" in caption, name


def test_the_figures_show_the_projection_of_image_and_labels(assessment):
    grey, labels = _pixels(assessment)
    assert labels.shape == _SHAPE[1:] and grey.shape == _SHAPE[1:]
    assert np.array_equal(labels, assessment.raw_labels.max(axis=0))
    # the brightest projected pixels are those of the objects: the projection of the image, not a slice
    assert grey[labels > 0].mean() > grey[labels == 0].mean() + 0.5


def test_page_says_which_parameters_a_volume_measures(page, assessment):
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert f"measured in 3D: {len(VOLUME_PARAMETERS)} parameters" in text and "MorphoLibJ" in text
    eps_caption = _figures(page)["eps_per_parameter"][1]
    # A family is bracketed and named only when all its members are measured (not the AR family).
    for _, members in FAMILIES.values():
        shown = f"{_and(members)} (shaded yellow, bracketed)" in eps_caption
        assert shown == (set(members) <= set(VOLUME_PARAMETERS)), members
    assert "Round" not in eps_caption


def _and(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def test_html_tables_hold_no_nan_and_no_unmeasured_parameter_rows(page, assessment):
    tables = _tables(page)
    assert tables
    for table in tables:
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", table, re.S)]
        for cell in cells:
            assert not re.search(r"(?i)\bnan\b", cell), cell
    # one row per measured parameter in each codec's score table
    for c in assessment.codecs:
        section = page.split(f"<h3><code>{html.escape(c.spec)}</code></h3>", 1)[1]
        table = _tables(section)[0]
        # the parameter's name, then maybe its family in <small>
        rows = re.findall(r"<tr><td>([^<]+)(?:</td>|\s*<small>)", table)
        assert [html.unescape(r).strip() for r in rows] == list(VOLUME_PARAMETERS)
    # the null reference's entries (first column) only of measured parameters
    null = page.split("<h2>Null reference</h2>", 1)[1].split("<h2>", 1)[0]
    keys = [html.unescape(k) for k in re.findall(r"<tr><td>([^<]+)</td>", null)]
    assert any(k.endswith(".Volume") for k in keys)
    unmeasured = [p for p in PARAMETERS if p not in VOLUME_PARAMETERS]
    assert not [k for k in keys if any(k == p or k.endswith("." + p) or f".{p}." in k for p in unmeasured)]


def test_tables_have_a_volumes_own_parameters(folder, assessment):
    rows = _csv(folder / "objects.csv", dicts=True)
    assert len(rows) == len(assessment.codecs) * len(assessment.raw) * len(VOLUME_PARAMETERS)
    assert {r["parameter"] for r in rows} == set(VOLUME_PARAMETERS)
    for r in rows:
        if r["parameter"] in ("Volume", "SurfaceArea", "Voxels", "MaxFeretDiam"):
            assert float(r["chi_raw"]) > 0
    assert "nan" not in (folder / "outside_band.csv").read_text().lower()
    for path in [folder / "raw_results.csv", *sorted((folder / "imagej").glob("*.csv"))]:
        table = _csv(path)
        assert table[0] == [" ", *VOLUME_PARAMETERS], path.name
        assert len(table) == 1 + len(assessment.raw)
        assert all(cell != "" and cell.lower() != "nan" for row in table[1:] for cell in row)
    raw = _csv(folder / "raw_results.csv")
    assert [float(r[1]) for r in raw[1:]] == assessment.raw.column("Volume").tolist()
    summary = (folder / "summary.txt").read_text()
    assert "voxels" in summary and "V_tot" in summary and "SA_tot" in summary and "nan" not in summary.lower()


def test_label_volumes_are_written_with_zyx_axes(folder, assessment):
    with tifffile.TiffFile(folder / "labels" / "00_raw.tif") as tif:
        assert tif.series[0].axes == "ZYX"
        labels = tif.asarray()
    assert labels.shape == _SHAPE
    assert np.array_equal(labels, assessment.raw_labels)
    ids = {int(r["object"]) for r in _csv(folder / "objects.csv", dicts=True)}
    assert ids == set(np.unique(labels[labels > 0]).tolist())
    codec_files = sorted((folder / "labels").glob("0[1-9]_*.tif"))
    assert len(codec_files) == len(assessment.codecs)
    for path in codec_files:
        with tifffile.TiffFile(path) as tif:
            assert tif.series[0].axes == "ZYX" and tif.asarray().shape == _SHAPE


def test_segmentation_warnings_count_voxels_for_a_volume():
    v = np.zeros((30, 40, 40), np.int32)
    v[5:25, 5:25, 5:25] = 1                      # 8000 voxels, 17 % of the volume
    for k in range(6):
        v[26:29, 2 + 6 * k: 5 + 6 * k, 30:33] = k + 2   # 3 x 3 x 3 = 27 voxels each
    giant = segmentation_warnings(measure_volume_objects(v), v.shape)
    assert len(giant) == 1
    assert "8000 voxels, 16.7% of the volume" in giant[0] and " px" not in giant[0]
    specks = np.zeros((10, 20, 20), np.int32)
    specks[::3, ::3, ::3] = np.arange(1, specks[::3, ::3, ::3].size + 1).reshape(specks[::3, ::3, ::3].shape)
    fragmented = segmentation_warnings(measure_volume_objects(specks), specks.shape)
    assert any("fragmented: median object volume 1.0 voxels" in w and "have 1-3 voxels" in w for w in fragmented)
    assert not any(" px" in w for w in fragmented)


def test_volume_figures_survive_without_the_image(assessment):
    bare = dataclasses.replace(assessment, image=None, raw_labels=None)
    figures = render_figures(bare)
    assert [f.name for f in figures] == list(_NAMES) == list(figure_names(bare))
    objects = figures[_NAMES.index("objects_eps")]
    assert objects.png.startswith(_PNG_SIGNATURE) and "ball of its volume" in objects.caption
    views = figures[_NAMES.index("orthogonal_views")]
    assert views.png.startswith(_PNG_SIGNATURE) and "not in this assessment" in views.caption


# --------------------------------------------------------------------------------------------------
# The volume's own figures (Fig. 3, Table 2), and how each codec coded the volume
# --------------------------------------------------------------------------------------------------

def test_a_volumes_figure_list_has_its_own_figures_and_an_images_is_unchanged(assessment):
    assert figure_names(assessment) == _NAMES
    assert "area_difference" not in _NAMES and set(_NAMES) - set(FIGURE_NAMES) == set(_VOLUME_FIGURES) - {"globals"}
    image = SimpleNamespace(image=np.zeros((8, 8)), raw_labels=None, provenance={}, codecs=())
    assert figure_names(image) == FIGURE_NAMES


def test_the_volume_figures_are_valid_png_svg_and_pdf_files(folder):
    for name in _VOLUME_FIGURES:
        png = (folder / "figures" / f"{name}.png").read_bytes()
        assert png.startswith(_PNG_SIGNATURE), name
        pixels = mpimg.imread(io.BytesIO(png), format="png")
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100 and pixels[..., :3].std() > 0.01, name
        svg = ET.fromstring((folder / "figures" / f"{name}.svg").read_bytes())
        assert svg.tag == "{http://www.w3.org/2000/svg}svg", name
        words = " ".join("".join(e.itertext()) for e in svg.iter("{http://www.w3.org/2000/svg}text"))
        assert len(words) > 20, name
        pdf = (folder / "figures" / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF"), name


def test_the_volume_figures_appear_on_the_page_with_their_captions(page, folder):
    figures = _figures(page)
    for name in _VOLUME_FIGURES:
        png, caption = figures[name]
        assert png == (folder / "figures" / f"{name}.png").read_bytes(), name
        assert len(caption) > 150 and caption.startswith("Figure "), name
    for i, spec in enumerate(_CODECS, 1):
        caption = figures[f"volume_scatter_{i:02d}"][1]
        assert f"decoded from {spec}" in caption and "Voxels column" in caption and "in voxels" in caption
    difference = figures["volume_difference"][1]
    assert "disjoint pair of replicas" in difference and "Voxels column" in difference
    views = figures["orthogonal_views"][1]
    assert "xy" in views and "xz" in views and "yz" in views and "voxel spacing (z, y, x) = (1, 1, 1)" in views
    # the existing globals figure shows the volume's three globals: no second globals figure
    globals_caption = figures["globals"][1]
    assert "V_tot" in globals_caption and "SA_tot" in globals_caption and not re.search(r"\bA_tot", globals_caption)
    svg = ET.fromstring((folder / "figures" / "globals.svg").read_bytes())
    words = " ".join("".join(e.itertext()) for e in svg.iter("{http://www.w3.org/2000/svg}text"))
    for name in ("N_tot", "V_tot", "SA_tot"):
        assert f"{name} / {name} of raw" in words, name
    assert not any(n.startswith("globals_") for n in figures)


def test_the_orthogonal_views_cross_at_the_largest_object_at_the_physical_voxel_size(assessment):
    voxels = assessment.raw.column("Voxels")
    k = int(np.argmax(voxels))
    centre = [int(round(assessment.raw.column(f"Centroid.{axis}")[k])) for axis in "ZYX"]  # spacing 1
    caption = _report_orthogonal_views(assessment).caption
    assert f"(z, y, x) = ({centre[0]}, {centre[1]}, {centre[2]}) (the centroid of the largest raw object)" in caption
    assert "The axes are in voxels" in caption
    # the largest object is cut by all three slices: its own voxel is inside it
    assert assessment.raw_labels[tuple(centre)] == k + 1
    # a file's voxel size and unit reach the axes; the centroid (physical units) is divided by it
    spacing = (2.0, 0.5, 0.25)
    scaled = dataclasses.replace(assessment, provenance={**assessment.provenance, "spacing": list(spacing),
                                                         "pixel_size": {"x": 0.25, "y": 0.5, "z": 2.0, "unit": "µm"}})
    caption = _report_orthogonal_views(scaled).caption
    assert "The axes are in µm from the voxel spacing (z, y, x) = (2, 0.5, 0.25)" in caption
    expected = [min(max(round(assessment.raw.column(f"Centroid.{axis}")[k] / s), 0), n - 1)
                for axis, s, n in zip("ZYX", spacing, _SHAPE)]
    assert f"(z, y, x) = ({expected[0]}, {expected[1]}, {expected[2]})" in caption


def _difference_rows(page: str) -> dict:
    section = page.split('id="volume-difference-table"', 1)[1]
    table = _tables(section)[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        rows[cells[0]] = (int(cells[1]), float(cells[2]), float(cells[3]))
    return rows


def test_table_2_holds_numpys_numbers_on_the_assessments_own_arrays(page, assessment):
    size = list(assessment.raw.names).index("Voxels")
    raw = assessment.raw.values[:, size]
    replicas = assessment.replica_values[:, :, size]
    half = len(replicas) // 2
    assert half >= 1
    expected = {SECOND_ACQUISITION: (replicas[0:2 * half:2] - replicas[1:2 * half:2]).ravel()}
    for c in assessment.codecs:
        expected[c.spec] = raw - c.objects.values[:, size]
    diffs = volume_differences(assessment)
    assert list(diffs) == list(expected)
    for source, d in expected.items():
        np.testing.assert_array_equal(diffs[source], d)
    rows = _difference_rows(page)
    assert list(rows) == list(expected)
    for source, d in expected.items():
        finite = d[np.isfinite(d)]
        n, mean, sd = rows[source]
        assert n == len(finite) > 0, source
        assert mean == pytest.approx(np.mean(finite), abs=5e-4), source
        assert sd == pytest.approx(np.std(finite, ddof=1), abs=5e-4), source
    # the lossless codec leaves every volume as it was; the figure's legend gives the same numbers
    assert rows["lossless"][1:] == (0.0, 0.0)
    legend = page.split('id="volume-difference-table"', 1)[1].split("</dl>", 1)[0]
    assert "mean (voxels)" in legend and "ddof 1" in legend


def test_the_page_says_how_each_codec_coded_the_volume(page, assessment):
    coded = {c.spec: c.info["coded"] for c in assessment.codecs}
    assert coded == {"lossless": "volume", "jpeg:quality=60": "planes"}
    verdict = _tables(page.split("<h2>Verdict per codec</h2>", 1)[1])[0]
    head = [html.unescape(re.sub(r"<[^>]+>", "", h)) for h in re.findall(r"<th>(.*?)</th>", verdict, re.S)]
    assert head[:3] == ["codec", "compression ratio", "coded"]
    cells = {}
    for row in re.findall(r"<tr>(.*?)</tr>", verdict, re.S)[1:]:
        values = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        cells[values[0]] = values[2]
    assert cells == {"lossless": "as a volume (one stream)",
                     "jpeg:quality=60": f"plane by plane ({_SHAPE[0]} planes)"}
    note = html.unescape(re.sub(r"<[^>]+>", "", page.split('id="volume"', 1)[1].split("</p>", 1)[0]))
    assert "Coded as a volume (one stream of the whole volume): lossless." in note
    assert "Coded plane by plane (one 2D stream per z plane, their sizes added): jpeg:quality=60." in note
    legend = page.split("<h2>Verdict per codec</h2>", 1)[1].split("</dl>", 1)[0]
    assert "<dt>coded</dt>" in legend


def test_the_volume_figures_of_a_volume_without_objects_say_so(assessment):
    raw = dataclasses.replace(assessment.raw, values=assessment.raw.values[:0].copy(),
                              labels=assessment.raw.labels[:0].copy())
    codecs = tuple(dataclasses.replace(c, objects=dataclasses.replace(c.objects, values=c.objects.values[:0].copy()))
                   for c in assessment.codecs)
    empty = dataclasses.replace(assessment, raw=raw, codecs=codecs, replica_values=assessment.replica_values[:, :0])
    diffs = volume_differences(empty)
    assert list(diffs) == [SECOND_ACQUISITION, *_CODECS] and all(len(d) == 0 for d in diffs.values())
    difference = _report_difference(empty)
    assert f"No finite difference (not drawn): {SECOND_ACQUISITION}; lossless; jpeg:quality=60." in difference.caption
    assert "0 objects with a volume in both" in _report_scatter(empty, 0).caption
    assert "(its centre)" in _report_orthogonal_views(empty).caption
