"""The words of the report: figure captions, the titles of table columns and what each column means.

Plain text, no HTML: the page escapes it where it shows it.
"""

from __future__ import annotations

import numpy as np

from ..measure._morphometry import PARAMETERS
from ..measure._volume import VOLUME_PARAMETERS
from ..results import VOLUME_GLOBALS
from ..score._tests import FAMILIES, TRIM
from . import _inspection as inspection
from ._inspection import _is_volume, _measured_parameters
from ._draw import _NUMBERED
from ._reading import _and, _fmt, _global_names, _n_measured


def _projection_note(a) -> str:
    """The caption sentence of a figure that shows a volume as its projection ('' for an image)."""
    if not _is_volume(a):
        return ""
    shape = getattr(a, "image", None)
    shape = np.shape(shape) if shape is not None else tuple((a.provenance or {}).get("image_shape") or ())
    size = " × ".join(str(int(v)) for v in shape)
    return (f" This is a volume (z × rows × columns = {size}) shown as its maximum-intensity projection along "
            "z, the label volumes projected the same way (along each z line the largest object id): objects "
            "that overlap in z hide one another; labels/ holds the label volumes themselves.")


def _not_measured_note(a) -> str:
    """The sentence that says what a volume's objects are measured with ('' for an image)."""
    measured = _measured_parameters(a)
    if tuple(measured) == PARAMETERS:
        return ""
    return (f"A volume's objects are measured in 3D: {len(measured)} parameters with the names and definitions of "
            "MorphoLibJ's Analyze Regions 3D (Volume, SurfaceArea by a Crofton estimator, MeanBreadth, Sphericity, "
            "centroid, bounding box, equivalent ellipsoid, MaxFeretDiam, EulerNumber, convex volume and solidity) in "
            "the physical units of the voxel size, the voxel count in voxels, and the intensities in electrons.")


def _coded_text(c) -> str:
    """How a codec coded a volume, as the verdict table says it: from ``CodecScore.info["coded"]``."""
    info = getattr(c, "info", None) or {}
    coded = info.get("coded")
    if coded == "volume":
        return "as a volume (one stream)"
    if coded == "planes":
        planes = info.get("planes")
        return "plane by plane" + (f" ({planes} planes)" if planes is not None else "")
    return "–"


def _coded_note(a) -> str:
    """The sentences that say which codecs coded the volume whole and which plane by plane ('' if none says)."""
    groups = {"volume": [], "planes": []}
    for c in a.codecs:
        coded = (getattr(c, "info", None) or {}).get("coded")
        if coded in groups:
            groups[coded].append(c.spec)
    parts = []
    if groups["volume"]:
        parts.append("Coded as a volume (one stream of the whole volume): " + "; ".join(groups["volume"]) + ".")
    if groups["planes"]:
        parts.append("Coded plane by plane (one 2D stream per z plane, their sizes added): "
                     + "; ".join(groups["planes"]) + ".")
    return " ".join(parts)


# Figure captions

def area_difference(a, scale: str, notes) -> str:
    """Caption of the single-object area difference; ``scale`` of its x axis, ``notes`` on what it left out."""
    caption = ("Area of each object in a second image minus its area in the first (Fig. 2c of Pomarico et al. "
               "2022): each codec's decoded image against the raw image, in colour, and, in grey, simulated "
               "second acquisitions: one replica against another of a disjoint pair (raw-equivalent "
               "Monte-Carlo images from the camera noise model), what re-imaging the sample changes. Points "
               "are objects, boxes the quartiles, black diamonds mean ± sd (also written under each name). "
               f"Objects without a partner are left out. The x axis is {scale}.")
    if _is_volume(a):
        caption += (" For this volume Area is the object's volume in voxels (its voxel count in the 26-connected "
                    "label volume), not the area of a projection.")
    if notes:
        caption += " Note: " + "; ".join(notes) + "."
    return caption


def globals_relative(a) -> str:
    """Caption of the global parameters relative to raw."""
    if _is_volume(a) and tuple(_global_names(a)) == VOLUME_GLOBALS:
        return ("Global parameters normalised to the raw volume (Fig. 3f of Pomarico et al. 2022): object count "
                "N_tot (26-connected objects), total object volume V_tot and total surface area SA_tot (in the "
                "physical units of the voxel size) of each replica (grey points; black square = mean ± sd) and of "
                "each codec's decoded volume (coloured points), divided by the raw value. Codec error bars and the "
                "grey band are σ_raw / raw, σ_raw being the sd over the replicas.")
    caption = ("Global parameters normalised to the raw image (Fig. 2d): object count N_tot and total object "
               "area A_tot of each replica (grey points; black square = mean ± sd) and of each codec's decoded "
               "image (coloured points), divided by the raw value. Codec error bars and the grey band are "
               "σ_raw / raw, σ_raw being the sd over the replicas.")
    if _is_volume(a):
        caption += " For this volume A_tot is the total object volume in voxels."
    return caption


def eps_per_parameter(a, simulated_null: bool, theory: dict, families, any_inf: bool, show_model: bool) -> str:
    """Caption of eps per parameter: ``families`` are the members of each family bracketed in the figure."""
    null_text = ("the simulated second raw acquisition (grey)" if simulated_null else
                 f"the theoretical null of a second raw acquisition, ε ~ {theory['label']} (grey; its sd is "
                 f"{_fmt(theory['sd'])})")
    caption = ("Mean ε with sd error bars, per parameter (Fig. 2e), one series per codec, beside " + null_text +
               ". The green band is |ε| < 1: a change inside the raw camera noise."
               + "".join(f" {_and(members)} (shaded yellow, bracketed) are functions of one another: they count "
                         "as one parameter family." for members in families))
    if _not_measured_note(a):
        caption += " " + _not_measured_note(a)
    if any_inf:
        caption += (" Triangles on the top edge mark parameters where some ε is ±∞ (σ_raw = 0 and the codec "
                    "changed the value); those are left out of mean and sd and counted in the tables.")
    if show_model:
        caption += (" Lower panel: median over objects of the spread of each parameter when the pixel "
                    "classifier is retrained with other seeds, divided by σ_raw (reported beside σ_raw, "
                    "never added to it).")
    return caption


def ratio_distortion(a, null_kind: str, without, undefined) -> str:
    """Caption of ratio against distortion; ``without``, ``undefined``: the specs of codecs not plotted."""
    caption = ("Compression ratio (log scale) against two measures of distortion over all raw objects and the "
               f"{_n_measured(a)} parameters: the median |ε| (left) and the fraction of (object, parameter) pairs "
               "outside the "
               "band |ε| < 1 (right); infinite ε count as outside. The dashed line is the same measure for a "
               f"second raw acquisition ({null_kind}). Circles: tolerable by the verdict rule; crosses: not.")
    if _not_measured_note(a):
        caption += " " + _not_measured_note(a)
    if without:
        caption += " Codecs without a compression ratio (not plotted): " + "; ".join(without) + "."
    if undefined:
        caption += " Codecs with no estimable ε (not plotted): " + "; ".join(undefined) + "."
    return caption


def objects_eps(a, have_pixels: bool) -> str:
    """Caption of the objects coloured by |eps| of their Area."""
    volume = _is_volume(a)
    caption = ("The raw image in grey, each raw object coloured by |ε| of its Area for the codec named above "
               "the panel, on a colour scale clipped to 0–3 (|ε| ≥ 3 and ±∞ take the top colour; |ε| < 1 is "
               "inside the raw noise). Red objects have no matching object in the decoded image; cyan ones "
               "have no σ_raw (matched by fewer than 2 replicas).")
    if not have_pixels and volume:
        caption += (" The raw volume and label volume are not in this assessment, so each object is drawn as "
                    "the disc of a ball of its volume at its centre (XM, YM) on a dark background, seen along z.")
    elif not have_pixels:
        caption += (" The raw image and label image are not in this assessment, so each object is drawn as "
                    "its fitted ellipse (XM, YM, Major, Minor, Angle) on a dark background.")
    if have_pixels and volume:
        caption += _projection_note(a) + " Area is the object's volume in voxels."
    return caption


def segmentation(a, have_pixels: bool) -> str:
    """Caption of the raw segmentation and its histogram of areas."""
    volume = _is_volume(a)
    caption = ("What was measured: the raw image in grey (0.5–99.5 % percentile stretch) with the outline of "
               f"every raw object in yellow; objects more than {inspection.GIANT_MEDIAN_RATIO:g} times the "
               f"median area of the objects over {inspection.TINY_AREA_PX} px outlined red, and tinted red too "
               f"when one covers more than {inspection.GIANT_IMAGE_FRACTION:.0%} of the image (the giant-object "
               f"warning); objects of 1–{inspection.TINY_AREA_PX} px (specks) in magenta. Right: histogram of "
               "the raw object areas with those limits. A segmentation that covers background, joins cells or "
               "breaks them into specks makes every number below about something else than cells; "
               "labels/00_raw.tif holds it as a label image (ids = the object column of objects.csv) to open in "
               "Fiji or napari.")
    if volume:
        caption = ("What was measured: the raw volume as its maximum-intensity projection along z, in grey "
                   "(0.5–99.5 % percentile stretch), with the outline of every raw object of the projected label "
                   "volume (along each z line the largest object id) in yellow; objects of more than "
                   f"{inspection.GIANT_MEDIAN_RATIO:g} times the median volume of the objects over "
                   f"{inspection.TINY_AREA_PX} voxels outlined red, and tinted red too when one fills more than "
                   f"{inspection.GIANT_IMAGE_FRACTION:.0%} of the volume (the giant-object warning); objects of "
                   f"1–{inspection.TINY_AREA_PX} voxels (specks) in magenta. Objects that overlap in z hide one "
                   "another in the projection. Right: histogram of the raw object volumes (voxel counts of the "
                   "26-connected objects) with those limits. labels/00_raw.tif holds the label volume (ids = the "
                   "object column of objects.csv) to open in Fiji or napari.")
    if not have_pixels:
        caption += " The image and label image are not in this assessment, so only the histogram is drawn."
    return caption


def outside_band(a, have_pixels: bool, missing_codec_labels) -> str:
    """Caption of the objects outside the noise band; ``missing_codec_labels``: the specs without a label image."""
    caption = ("Per codec, the raw objects outside the noise band: filled orange when the largest |ε| over "
               f"the {_n_measured(a)} parameters is between 1 and 3, red when it is 3 or more (or ±∞), magenta "
               "when the object, found by at least 2 replicas, has no partner in the decoded image (lost, split "
               "or merged). Light outlines are the raw objects, cyan ones "
               f"the objects segmented in the decoded image. The {_NUMBERED} worst carry their rank in the "
               "table of objects outside the band below; labels/ holds both segmentations as label images.")
    if have_pixels:
        caption += _projection_note(a)
    if missing_codec_labels:
        caption += (" The decoded image's label image is not in this assessment for: "
                    + "; ".join(missing_codec_labels) + " (no cyan outlines).")
    return caption


# Tables

_COLUMN_TITLES = {"n": "n", "n_infinite": "n ±∞", "mean_eps": "mean ε", "sd_eps": "sd ε",
                  "frac_abs_eps_lt_1": "fraction |ε|<1", "median_abs_eps": "median |ε|", "codec_value": "codec",
                  "n_replicas_matched": "replicas matched", "match_rate": "match rate",
                  "worst_parameter": "worst parameter", "n_parameters_outside": "parameters outside",
                  "eps": "ε", "sigma_raw": "σ_raw", "chi_raw": "χ_raw", "chi_codec": "χ_codec",
                  "sigma_used": "σ used"}


def _column_help() -> dict:
    """What each table column means, shown in a legend under every table that has it."""
    tested_through = "; ".join(
        f"“family {name}”: {_and(m for m in members if m != rep)} "
        f"{'are functions' if len(members) > 2 else 'is a function'} of {rep}, tested through {rep}"
        for name, (rep, members) in FAMILIES.items())
    families = "; ".join(f"{', '.join(members)}: one degree of freedom" for _, members in FAMILIES.values())

    return {
        # verdict table
        "codec": "the codec spec as given (name and settings).",
        "compression ratio": "raw image bytes / compressed bytes (– where the codec does not report a size).",
        "raw objects matched": "raw objects with a partner in the decoded image's segmentation (by the matching "
                               "rule, see provenance) / raw objects.",
        "verdict": "tolerable: every criterion of the rule below shown within its margin; not tolerable: one shown "
                   "beyond it; inconclusive: neither.",
        "reasons": "the criteria shown beyond their margin (not tolerable) or decided neither way (inconclusive, with "
                   "about how many objects or replicas would decide them).",
        # parameter tables
        "parameter": f"one of the {len(PARAMETERS)} ImageJ parameters (Analyze Particles and Extended Particle "
                     f"Analyzer names; the intensities in electrons above the camera's offset); {tested_through}.",
        "n": "raw objects with an ε for this parameter: matched in the decoded image and by ≥ 2 replicas "
             "(so σ_raw exists); finite or infinite.",
        "n_infinite": "of those, objects with ε = ±∞: σ_raw = 0 (all replicas gave the same value) and the codec "
                      "changed the value; outside the band, left out of mean and sd.",
        "mean_eps": "mean of the finite ε = (χ_raw − χ_codec) / σ_raw; red when |mean| ≥ 1.",
        "sd_eps": "sample sd (ddof 1) of the finite ε; a second raw acquisition gives about √2.",
        "frac_abs_eps_lt_1": "fraction of the n objects inside the noise band |ε| < 1 (±∞ outside); a second raw "
                             "acquisition gives about 0.52.",
        "median_abs_eps": "median |ε| over the n objects (±∞ count as large).",
        "family": f"the parameter family tested as one ({families}).",
        "n_eps": "objects with an ε (±∞ included, as beyond any margin): what the location tests (trimmed "
                 "mean, p_zero, p_equivalent) use; the verdict needs at least 3.",
        "n_finite": "objects with a finite ε (where the statistics carry n_eps, the ±∞ ones are n_eps − "
                    "n_finite; otherwise n_finite is what the location tests use, at least 3 needed).",
        "trimmed_mean": f"{TRIM:.0%} trimmed mean of ε ({TRIM:.0%} cut from each end): the systematic "
                        "shift, robust to the heavy tails of ε where σ_raw is tiny.",
        "p_zero": "two-sided p of the test that the trimmed mean is 0 (Tukey–McLaughlin's t; the signed-rank test "
                  "where some ε = ±∞): small means a systematic shift was detected (with many objects even a shift "
                  "far inside the noise is; read with p_equivalent).",
        "p_zero_holm": "p_zero Holm-corrected over the parameter families (one test per family).",
        "p_equivalent": "p of the equivalence test (TOST: two one-sided Tukey–McLaughlin t tests) that |trimmed "
                        "mean| is below the shift margin (summary.json verdict.margins.shift): below alpha shows the "
                        "shift within it.",
        "p_beyond": "one-sided p that |trimmed mean| is above the shift margin (or, with ε = ±∞, that more than "
                    "the trimmed share of objects is infinite): below alpha, after Holm over the verdict's "
                    "criteria, shows the shift beyond it.",
        "se_trimmed": "standard error of the trimmed mean (Tukey–McLaughlin: from the winsorized variance).",
        "df": "degrees of freedom of the trimmed-mean t tests: the objects kept after trimming, minus 1.",
        "value": "the statistic as recorded.",
        "n_band": "objects with an ε (finite or ±∞): the denominator of the band fraction.",
        "n_inside": "of those, objects with |ε| < 1.",
        "frac_wilson95": "95 % Wilson score interval of the fraction |ε| < 1 (shown for reading).",
        "null_fraction": "the fraction |ε| < 1 a simulated second raw acquisition gives for this parameter.",
        "band_threshold": "keep × null_fraction: the fraction |ε| < 1 that a per-object error as wide as the "
                          "spread margin allows (× a second acquisition's) would give.",
        "p_band": "one-sided p (score test of a ratio of two proportions) that the fraction |ε| < 1 exceeds "
                  "band_threshold, for this parameter alone (the verdict pools its primary parameters).",
        "sigma_used": "the σ that ε divides by: σ_raw, or the parameter's floor where σ_raw is below it.",
        # matching and loss table
        "method": "matching rule: iou (one-to-one, IoU ≥ 0.5) or centroid (nearest centre within 3 px).",
        "n_reference": "raw objects.",
        "matched": "raw objects with a partner in the decoded image.",
        "unmatched_reference": "raw objects without a partner (lost, split or merged).",
        "unmatched_other": "decoded-image objects no raw object took (new objects or split-off fragments).",
        "shared": "decoded-image objects taken by two or more raw objects (centroid rule only).",
        "lost": "raw objects without a partner that are neither split nor merged (erased, or reshaped "
                "beyond the matching rule).",
        "split": "raw objects broken into two or more decoded-image objects (no one-to-one partner).",
        "merged": "raw objects joined with a neighbour into one decoded-image object.",
        "n_raw": "raw objects.",
        "n_unmatched": "raw objects left without a one-to-one partner (lost + split + merged).",
        "rate": "n_unmatched / n_raw.",
        "null_unmatched": "the same count for simulated second raw acquisitions (pooled pairs of replicas).",
        "null_n": "raw objects in those pooled second acquisitions.",
        "null_rate": "null_unmatched / null_n: how many objects camera noise alone leaves unmatched.",
        "p_excess": "one-sided Fisher exact p that the codec's unmatched rate exceeds null_rate (descriptive: the "
                    "verdict's loss criterion has a margin, see the rule).",
        "alpha": "the level p_excess is compared with.",
        "test": "the test behind p_excess.",
        "excess": "yes: the codec leaves significantly more raw objects without a partner than camera noise does "
                  "(descriptive; the verdict judges the rate against its margin).",
        # globals table
        "global": "N_tot: number of objects in the image; A_tot: their total area (px).",
        "raw": "the value on the raw image.",
        "codec_value": "the value on the decoded image.",
        "σ_raw": "sd over the replicas (ddof 1): the spread camera noise alone gives.",
        "ε": "(raw − codec) / σ_raw.",
        # outside-band table
        "rank": "1 = worst: largest |ε| first, then the objects without a partner by decreasing area.",
        "object": "raw object id: the object column of objects.csv and the value in labels/00_raw.tif.",
        "codec_object": "the partner's id in the decoded image's segmentation (labels/NN_codec.tif; empty: none).",
        "status": "what the decoded segmentation made of the object: matched (a partner by the matching "
                  "rule), merged (no partner; the object covering half of it also covers half of a "
                  "neighbour), split (no partner; two or more objects lie mostly inside it), lost (none of "
                  "these); unmatched: no partner, and no label images to tell which.",
        "worst_parameter": "the parameter of largest |ε| for this object.",
        "eps": "ε of the worst parameter (empty for objects without a partner).",
        "sigma_raw": "σ_raw of the worst parameter: its sd over the replicas.",
        "sigma_used": "the σ that ε divides by: σ_raw, or the parameter's floor where σ_raw is below it.",
        "chi_raw": "the worst parameter measured on the raw image.",
        "chi_codec": "the worst parameter measured on the decoded image's partner object.",
        "n_parameters_outside": f"how many of the {len(PARAMETERS)} parameters have |ε| ≥ 1 for this object.",
        "n_replicas_matched": "replicas in which a partner of this raw object was found.",
        "match_rate": "n_replicas_matched / N replicas: below 1, the object itself is unstable under camera "
                      "noise, and its σ_raw rests on fewer replicas.",
        "area_raw": "the object's Area on the raw image (px).",
    }


def _volume_help() -> dict:
    """The legend texts that differ for a volume's tables."""
    return {
        "parameter": f"one of the {len(VOLUME_PARAMETERS)} parameters of a volume's objects: MorphoLibJ's Analyze "
                     "Regions 3D names and definitions in the physical units of the voxel size (the voxel count in voxels), "
                     "and the voxels' intensities in electrons.",
        "global": "N_tot: number of objects in the volume (26-connected); V_tot: their total volume; SA_tot: their "
                  "total surface area (physical units).",
        "n_parameters_outside": "how many of the volume's parameters have |ε| ≥ 1 for this object.",
        "area_raw": "the object's size on the raw volume, in voxels.",
        "object": "raw object id: the object column of objects.csv and the value in the label volume "
                  "labels/00_raw.tif.",
        # verdict table
        "coded": "how the codec coded the volume: as a volume (one stream of the whole volume, its own 3D "
                 "coding) or plane by plane (one 2D stream per z plane, the compression ratio over all of them).",
        # single-object volume difference (Table 2)
        "source": "second acquisition (simulated): for each disjoint pair of replicas, an object's voxel count in "
                  "the first minus that in the second, what re-imaging the sample changes; a codec spec: the "
                  "object's voxel count in the raw volume minus that of its partner in the decoded volume (the "
                  "sign of ε; summary.json's area_difference holds the decoded minus the raw).",
        "objects": "differences counted: raw objects with a partner (for the second acquisition, over all the "
                   "replica pairs); objects without one are left out.",
        "mean (voxels)": "mean of the single-object volume differences, in voxels.",
        "sd (voxels)": "their sample sd (ddof 1), in voxels.",
    }

