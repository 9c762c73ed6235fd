"""The figures of a volume's assessment drawn from plain arrays (Fig. 3 and Table 2 of Pomarico et
al. 2022): valid PNG, SVG and PDF files, the table's numbers, the physical aspect of the orthogonal
views, and empty input drawn as a figure that says so."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib import image as mpimg
from matplotlib.collections import QuadMesh
from PIL import Image

from noisestat.errors import InputError
from noisestat.report._volumes import (_orthogonal_views, _volume_difference, _volume_scatter, globals_figure_3d,
                                       orthogonal_views_figure, volume_difference_figure, volume_difference_table,
                                       volume_scatter_figure, write_figures)
from noisestat.report._figures import _globals_drawing

_SVG = "{http://www.w3.org/2000/svg}"


def _balls(shape=(6, 20, 24), seed=0):
    """A small volume with two objects (a box and a ball) and its label volume."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.int32)
    labels[1:4, 3:9, 4:10] = 1
    z, y, x = np.indices(shape)
    labels[(z - 3) ** 2 + (y - 13) ** 2 / 4 + (x - 16) ** 2 / 4 <= 4] = 2
    volume = 100 + 50 * (labels > 0) + rng.normal(0, 3, shape)
    return volume, labels


def _svg_words(data: bytes) -> str:
    root = ET.fromstring(data)
    assert root.tag == f"{_SVG}svg"
    return " ".join("".join(e.itertext()) for e in root.iter(f"{_SVG}text"))


def _sample_figures():
    rng = np.random.default_rng(1)
    v_raw = rng.lognormal(6, 1, 300)
    v_codec = v_raw * rng.normal(0.9, 0.05, 300)
    v_codec[:5] = np.nan
    volume, labels = _balls()
    return [
        volume_scatter_figure(v_raw, v_codec, "jpeg:quality=60", "voxels"),
        volume_difference_figure({"replicas": rng.normal(0, 2, 200).round(),
                                  "8bit": rng.normal(30, 5, 100).round()}, "voxels"),
        globals_figure_3d({"N_tot": 100, "V_tot": 5e4, "SA_tot": 9e3},
                          {"8bit": {"N_tot": 85, "V_tot": 4.1e4, "SA_tot": 8e3}},
                          {"N_tot": [99, 101, 100], "V_tot": [5.01e4, 4.99e4, 5e4], "SA_tot": [9e3, 9.1e3, 8.9e3]}),
        orthogonal_views_figure(volume, labels, (2.0, 0.5, 0.5)),
    ]


def test_each_figure_writes_valid_png_svg_and_pdf(tmp_path):
    figures = _sample_figures()
    paths = write_figures(figures, tmp_path / "figures")
    names = [f.name for f in figures]
    assert [p.name for p in paths] == ([f"{n}.png" for n in names] + [f"{n}.svg" for n in names]
                                       + [f"{n}.pdf" for n in names])
    for f in figures:
        png = tmp_path / "figures" / f"{f.name}.png"
        pixels = mpimg.imread(png)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100, f.name
        # Something is drawn: not one flat colour.
        assert pixels[..., :3].std() > 0.01, f.name
        with Image.open(png) as im:
            im.verify()
        assert len(_svg_words((tmp_path / "figures" / f"{f.name}.svg").read_bytes())) > 20, f.name
        pdf = (tmp_path / "figures" / f"{f.name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF"), f.name
        assert b"/FontFile2" in pdf, f.name
        assert len(f.caption) > 80 and f.title, f.name


def test_a_png_only_figure_writes_no_empty_vector_files(tmp_path):
    f = volume_difference_figure({"replicas": [1.0, -1.0]}, vector=False)
    assert [p.name for p in write_figures([f], tmp_path)] == ["volume_difference.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["volume_difference.png"]


# --------------------------------------------------------------------------------------------------
# Table 2 and the difference histograms
# --------------------------------------------------------------------------------------------------

def test_difference_table_means_and_sds_equal_numpys():
    rng = np.random.default_rng(7)
    replicas = rng.normal(0.3, 1.1, 500)
    codec = rng.normal(3.0, 3.4, 120)
    codec[[4, 9]] = np.nan
    codec[11] = np.inf
    rows = volume_difference_table({"replicas": replicas, "jpeg:quality=10": codec})
    assert [r[0] for r in rows] == ["replicas", "jpeg:quality=10"]
    finite = codec[np.isfinite(codec)]
    assert rows[0][1] == 500 and rows[1][1] == 117
    assert rows[0][2] == pytest.approx(np.mean(replicas), rel=1e-12)
    assert rows[0][3] == pytest.approx(np.std(replicas, ddof=1), rel=1e-12)
    assert rows[1][2] == pytest.approx(np.mean(finite), rel=1e-12)
    assert rows[1][3] == pytest.approx(np.std(finite, ddof=1), rel=1e-12)


def test_difference_legend_gives_each_sources_mean_and_sd():
    diffs = {"replicas": [0.0, 1.0, -1.0, 2.0], "8bit": [30.0, 34.0, 32.0], "lossless": [0.0, 0.0]}
    drawing = _volume_difference(diffs, "voxels", "replicas", "volume_difference")
    labels = [t.get_text() for t in drawing.figure.legends[0].get_texts()]
    assert labels[0].startswith("replicas: +0.50 ± 1.29 voxels, n = 4")
    assert labels[1].startswith("8bit: +32.00 ± 2.00 voxels, n = 3")
    assert labels[2].startswith("lossless: +0.00 ± 0.00 voxels, n = 2")


def test_difference_histograms_are_each_normalised_to_their_objects():
    drawing = _volume_difference({"replicas": np.arange(10.0) % 3, "8bit": [5.0, 6.0, 6.0]}, "voxels", "replicas",
                                 "d")
    ax = drawing.figure.axes[0]
    filled = sum(p.get_height() for p in ax.patches if hasattr(p, "get_height"))
    assert filled == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------------
# Fig. 3d,e
# --------------------------------------------------------------------------------------------------

def test_scatter_counts_every_pair_with_a_volume_in_both_once():
    rng = np.random.default_rng(3)
    v_raw = rng.lognormal(5, 1.2, 400)
    v_codec = v_raw * 1.1
    v_codec[:7] = np.nan
    drawing = _volume_scatter(v_raw, v_codec, "8bit", "voxels", "volume_scatter")
    ax = drawing.figure.axes[0]
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 1
    assert float(np.ma.sum(meshes[0].get_array())) == 393
    assert meshes[0].norm.__class__.__name__ == "LogNorm"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    identity = [line for line in ax.lines if line.get_label().startswith("identity")]
    assert len(identity) == 1
    xs, ys = identity[0].get_data()
    assert np.allclose(xs, ys)
    assert "393 objects" in drawing.caption and "7 raw objects without a partner" in drawing.caption


def test_scatter_of_unequal_lengths_is_one_clear_error():
    with pytest.raises(InputError, match=r"v_raw and v_codec .* got 3 and 2 values") as info:
        volume_scatter_figure([1, 2, 3], [1, 2], "8bit", "voxels")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("v_raw, v_codec", [([], []), ([np.nan, 4.0], [2.0, np.nan])])
def test_scatter_without_pairs_says_so(v_raw, v_codec):
    drawing = _volume_scatter(v_raw, v_codec, "8bit", "voxels", "volume_scatter")
    texts = " ".join(t.get_text() for t in drawing.figure.axes[0].texts)
    assert "no object has a volume in both" in texts
    assert "0 objects with a volume in both" in drawing.caption
    assert volume_scatter_figure(v_raw, v_codec, "8bit", "voxels").pdf.startswith(b"%PDF-")


# --------------------------------------------------------------------------------------------------
# Fig. 3f
# --------------------------------------------------------------------------------------------------

def test_globals_3d_draws_each_given_global_relative_to_raw_with_sigma_bars():
    names = ["N_tot", "V_tot", "SA_tot", "mean_V"]
    raw = np.array([100.0, 5e4, 9e3, 500.0])
    replicas = np.array([[99, 5.01e4, 9.0e3, 506], [101, 4.99e4, 9.1e3, 494], [100, 5.0e4, 8.9e3, 500]], float)
    codec = np.array([85.0, 4.1e4, 8e3, 482.0])
    fig = _globals_drawing(names, raw, replicas, ["8bit"], [codec])
    assert [ax.get_title() for ax in fig.axes] == [f"{n} / {n} of raw" for n in names]
    sigma = replicas.std(axis=0, ddof=1)
    for j, ax in enumerate(fig.axes):
        # The codec's point (row 1) at its ratio to raw, its bar ±σ_raw / raw.
        point = [line for line in ax.lines if line.get_marker() == "o" and np.allclose(line.get_ydata(), [1.0])]
        assert len(point) == 1
        assert point[0].get_xdata()[0] == pytest.approx(codec[j] / raw[j])
        bar = [c for c in ax.collections if c.__class__.__name__ == "LineCollection"
               and np.allclose(c.get_segments()[0][:, 1], 1.0)]
        xs = bar[0].get_segments()[0][:, 0]
        assert xs[1] - xs[0] == pytest.approx(2 * sigma[j] / raw[j])


def test_globals_3d_names_every_global_and_survives_missing_values():
    f = globals_figure_3d({"N_tot": 10, "V_tot": 0.0, "SA_tot": float("nan")},
                          {"8bit": {"N_tot": 9}, "lossless": {"N_tot": 10, "V_tot": 0.0}}, None)
    words = _svg_words(f.svg)
    for name in ("N_tot / N_tot of raw", "V_tot / V_tot of raw", "SA_tot / SA_tot of raw"):
        assert name in words
    assert "V_tot of the raw image is 0" in words
    assert "SA_tot of the raw image is not given" in words
    assert "fewer than 2 replicas" in f.caption


def test_globals_3d_without_globals_says_so():
    f = globals_figure_3d({}, {})
    assert "no global parameter given" in _svg_words(f.svg)


def test_globals_3d_with_ragged_replicas_is_one_clear_error():
    with pytest.raises(InputError, match="one value per replica; got N_tot: 3, V_tot: 2"):
        globals_figure_3d({"N_tot": 1, "V_tot": 2}, {}, {"N_tot": [1, 2, 3], "V_tot": [1, 2]})


# --------------------------------------------------------------------------------------------------
# Orthogonal views
# --------------------------------------------------------------------------------------------------

def _axes_by_title(drawing):
    return {ax.get_title().split(" at ")[0]: ax for ax in drawing.figure.axes}


def test_orthogonal_views_take_their_aspect_from_the_voxel_spacing():
    volume, labels = _balls(shape=(6, 20, 24))
    spacing = (2.5, 0.4, 0.5)
    drawing = _orthogonal_views(volume, labels, spacing, None, "orthogonal_views")
    axes = _axes_by_title(drawing)
    assert set(axes) == {"xy", "xz", "yz"}
    assert axes["xy"].images[0].get_extent() == pytest.approx((0, 24 * 0.5, 20 * 0.4, 0))
    assert axes["xz"].images[0].get_extent() == pytest.approx((0, 24 * 0.5, 6 * 2.5, 0))
    assert axes["yz"].images[0].get_extent() == pytest.approx((0, 6 * 2.5, 20 * 0.4, 0))
    # Drawn at that aspect: the xz panel's height over its width on the page is z depth over x width.
    drawing.figure.canvas.draw()
    box = axes["xz"].get_window_extent()
    assert box.height / box.width == pytest.approx(6 * 2.5 / (24 * 0.5), rel=0.03)
    box = axes["yz"].get_window_extent()
    assert box.width / box.height == pytest.approx(6 * 2.5 / (20 * 0.4), rel=0.03)


def test_orthogonal_views_cut_at_the_centre_or_the_given_voxel_and_outline_the_objects():
    volume, labels = _balls()
    centre = _axes_by_title(_orthogonal_views(volume, labels, (1, 1, 1), None, "o"))
    assert centre["xy"].get_title() == "xy at z = 3" and centre["xz"].get_title() == "xz at y = 10"
    assert centre["yz"].get_title() == "yz at x = 12"
    drawing = _orthogonal_views(volume, labels, (1, 1, 1), (2, 5, 6), "o")
    axes = _axes_by_title(drawing)
    assert axes["xy"].get_title() == "xy at z = 2"
    # Object 1 (z 1-3, y 3-8, x 4-9) is cut by all three slices: its outline is drawn in each.
    for key, ax in axes.items():
        rgb = ax.images[0].get_array()
        yellow = (rgb[..., 0] == 1.0) & (rgb[..., 1] == 0.85) & (rgb[..., 2] == 0.0)
        assert yellow.any(), key
    assert "(z, y, x) = (2, 5, 6)" in drawing.caption


def test_orthogonal_views_without_objects_or_with_nan_say_so():
    volume, labels = _balls()
    drawing = _orthogonal_views(volume, np.zeros_like(labels), (1, 1, 1), None, "o")
    assert any("no object in the segmentation" in t.get_text() for t in drawing.figure.axes[0].texts)
    assert "the segmentation has no object" in drawing.caption
    nan_volume = np.full(volume.shape, np.nan)
    drawing = _orthogonal_views(nan_volume, labels, (1, 1, 1), None, "o")
    assert any("no finite intensity" in t.get_text() for ax in drawing.figure.axes for t in ax.texts)
    some_nan = volume.copy()
    some_nan[3, 0, 0] = np.nan
    assert "NaN voxels are shown black" in _orthogonal_views(some_nan, labels, (1, 1, 1), None, "o").caption
    empty = orthogonal_views_figure(np.zeros((0, 4, 4)), np.zeros((0, 4, 4), dtype=int), (1, 1, 1))
    assert "the volume is empty" in _svg_words(empty.svg)


class _SlicesOnly:
    """An array on disk as the figure sees it: shape, dtype and slicing, never read whole."""

    def __init__(self, array):
        self._array = array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.reads = []

    def __getitem__(self, key):
        self.reads.append(key)
        return self._array[key]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole volume was read")


def test_orthogonal_views_read_only_the_three_slices_of_a_large_volume():
    volume, labels = _balls()
    lazy_volume, lazy_labels = _SlicesOnly(volume), _SlicesOnly(labels)
    drawing = _orthogonal_views(lazy_volume, lazy_labels, (2.0, 0.5, 0.5), (2, 5, 6), "o", "nm")
    assert lazy_volume.reads == [2, (slice(None), 5, slice(None)), (slice(None), slice(None), 6)]
    assert len(lazy_labels.reads) == 3
    expected = _orthogonal_views(volume, labels, (2.0, 0.5, 0.5), (2, 5, 6), "o", "nm")
    for ax, ax_expected in zip(drawing.figure.axes, expected.figure.axes):
        assert np.array_equal(ax.images[0].get_array(), ax_expected.images[0].get_array())
    assert _axes_by_title(drawing)["xz"].get_xlabel() == "x (nm)"


@pytest.mark.parametrize("kwargs, message", [
    ({"volume": np.zeros((4, 4))}, r"volume must be 3-D .* shape \(4, 4\)"),
    ({"labels": np.zeros((4, 4, 5), dtype=int)}, r"labels must have the volume's shape \(4, 4, 4\); got \(4, 4, 5\)"),
    ({"labels": np.zeros((4, 4, 4))}, "labels must be integer object ids"),
    ({"spacing": (1, 0, 1)}, r"spacing must be three positive finite numbers .* got \(1, 0, 1\)"),
    ({"spacing": (1, 1)}, "spacing must be three positive"),
    ({"position": (4, 0, 0)}, r"position \(z, y, x\) = \(4, 0, 0\) is outside the volume of shape \(4, 4, 4\)"),
])
def test_orthogonal_views_of_bad_input_are_one_clear_error(kwargs, message):
    args = {"volume": np.zeros((4, 4, 4)), "labels": np.zeros((4, 4, 4), dtype=int), "spacing": (1, 1, 1),
            "position": None}
    args.update(kwargs)
    with pytest.raises(InputError, match=message) as info:
        orthogonal_views_figure(args["volume"], args["labels"], args["spacing"], args["position"], vector=False)
    assert "\n" not in str(info.value)


def test_empty_difference_input_gives_a_figure_and_nan_rows():
    rows = volume_difference_table({"replicas": [], "8bit": [math.nan]})
    assert [r[:2] for r in rows] == [("replicas", 0), ("8bit", 0)]
    assert all(math.isnan(r[2]) and math.isnan(r[3]) for r in rows)
    f = volume_difference_figure({"replicas": [], "8bit": [math.nan]})
    assert "no object has a finite volume difference" in _svg_words(f.svg)
    assert "No finite difference (not drawn): replicas; 8bit." in f.caption
    assert "no source given" in _svg_words(volume_difference_figure({}).svg)


# --------------------------------------------------------------------------------------------------
# For print: the report's width, readable text, no text on text
# --------------------------------------------------------------------------------------------------

def _crowded_drawings():
    """Each figure with long codec specs and several sources, where names and panels crowd."""
    rng = np.random.default_rng(5)
    specs = ["jpeg:quality=10,some_long_option=3", "noiseaware:beta=1", "8bit:mode=imagej", "lossless"]
    volume, labels = _balls(shape=(9, 30, 40))
    v_raw = rng.lognormal(6, 1, 200)
    raw = np.array([200.0, 5e4, 9e3, 250.0])
    replicas = raw * rng.normal(1, 0.01, (5, 4))
    return [
        _volume_scatter(v_raw, v_raw * 0.9, specs[0], "µm³", "volume_scatter"),
        _volume_difference({"replicas": rng.normal(0, 30, 500), **{s: rng.normal(k * 50, 60, 100)
                                                                    for k, s in enumerate(specs)}},
                           "voxels", "replicas", "volume_difference"),
        _finish_globals(["N_tot", "V_tot", "SA_tot", "mean_V"], raw, replicas, specs,
                        [raw * (0.85 + 0.04 * k) for k in range(len(specs))]),
        _orthogonal_views(volume, labels, (2.0, 0.3, 0.3), None, "orthogonal_views"),
    ]


def _finish_globals(names, raw, replicas, specs, values):
    from noisestat.report._draw import _finish

    return _finish("globals_3d", "t", "c", _globals_drawing(names, raw, replicas, specs, values))


def test_volume_figures_fit_a_page_width_with_readable_unclashing_text():
    from test_report import _layout_problems

    for drawing in _crowded_drawings():
        problems, checked = _layout_problems(drawing)
        assert checked > 5, drawing.name
        assert problems == [], drawing.name


def test_a_difference_figure_of_replica_pairs_says_so():
    diffs = {"second acquisition (simulated)": [1, -1, 0, 2], "8bit": [30, 34, 31]}
    pairs = _volume_difference(diffs, "voxels", "second acquisition (simulated)", "d", pairs=True)
    against_raw = _volume_difference(diffs, "voxels", "second acquisition (simulated)", "d")
    assert "one replica minus the other of each disjoint pair" in pairs.caption
    assert "against each replica" not in pairs.caption and "against each replica" in against_raw.caption
    assert pairs.figure.axes[0].get_xlabel().startswith("volume in the first − volume in the second")
    assert "between simulated acquisitions" in pairs.figure.axes[0].get_title()
