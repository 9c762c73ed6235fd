"""A decoded image scored against the reference: eps, the statistics, the losses and the verdict
(per class of object when the model has several), a sampled run's sampling errors, and the
operator-level eps of the classifier's filters. :mod:`noisestat.pipeline` calls it in the order of the
stages.
"""

from __future__ import annotations

import math

import numpy as np

from ._tasks import same_image
from .codecs import CodecResult
from .measure._matching import STATUSES
from .measure._volume import size_column
from .replicas._draw import BlockCache, draw_region, replica_seeds
from .results import CodecScore, ImageObjects, Reference
from .score._sampling import extrapolate_global
from .score._eps import epsilon, summarise_eps
from .score._null import band_counts
from .score._criteria import eps_scale, keep_for_spread
from .score._classes import class_blocks, judge_classes
from .score._verdict import judge
from .score._operators import operator_scores
from .score._tests import codec_statistics, difference_stats, loss_test

from ._reference import _angular, _seed_roots


def operator_level(image, profile, coded, *, seed: int, replicas: int, spacing=None, domain=None,
                   within=None) -> tuple:
    """Operator-level eps (:func:`noisestat.score.operator_scores`) of each decoded image, on the replicas
    and the two null replicas of the assessment itself (the same seeds, drawn again region by region):
    on the image or volume, or with ``domain`` (a :class:`~noisestat.reconstruct.Reconstructed`) on the
    projections, each a 2D image, and on their reconstructions. ``within``: the boxes of the image (or
    of the reconstruction) to score (``--sample``'s tiles; the projections are then still scored whole)."""
    _, replica_root, _ = _seed_roots(seed)
    seeds = replica_seeds(replica_root, replicas + 2)

    def drawn(s):
        blocks = BlockCache()
        return lambda region: draw_region(image, profile, s, region, blocks)

    decoded = {c.spec: c.decoded for c in coded}
    if domain is None:
        name = "image" if image.ndim == 2 else "volume"
        return operator_scores(image, [drawn(s) for s in seeds[:replicas]], decoded,
                               [drawn(s) for s in seeds[replicas:]], domain=name,
                               spacing=spacing if image.ndim == 3 else None, within=within)

    def rebuilt(s):
        # a replica's reconstruction, drawn and reconstructed once, when first needed
        held = {}

        def get(region):
            if "volume" not in held:
                stack = draw_region(image, profile, s, tuple(slice(0, n) for n in image.shape), BlockCache())
                held["volume"] = domain.of(stack).volume()
            return held["volume"][region]
        return get

    rows = operator_scores(image, [drawn(s) for s in seeds[:replicas]], decoded, [drawn(s) for s in seeds[replicas:]],
                           domain="projections", spacing=(math.inf, 1.0, 1.0))
    rows += operator_scores(domain.volume(), [rebuilt(s) for s in seeds[:replicas]],
                            {spec: domain.of(d).volume() for spec, d in decoded.items()},
                            [rebuilt(s) for s in seeds[replicas:]], domain="reconstruction", spacing=spacing,
                            within=within)
    return rows


def score_codec(ref: Reference, coded: CodecResult, objects: ImageObjects) -> CodecScore:
    """eps, summaries, statistics, losses and the verdict of one decoded image against the reference."""
    raw = ref.raw
    columns = ref.parameters
    eps = epsilon(raw.values, objects.values, ref.sigma_used, _angular(columns))
    parameters = {p: summarise_eps(eps[:, j]) for j, p in enumerate(columns)}
    statistics = codec_statistics(eps, columns, ref.null_fractions, margin=ref.margins.shift,
                                  keep=keep_for_spread(ref.margins.spread, ref.n_replicas),
                                  beyond_margin=ref.margins.shift * eps_scale(ref.n_replicas))
    sigma_global, sigma_used = ref.sigma_global, ref.sigma_global_used
    global_eps = epsilon(ref.raw_objects.globals, objects.globals, sigma_used, np.zeros(len(sigma_used), bool))
    global_scores = {name: {"raw": float(ref.raw_objects.globals[i]), "sigma_raw": float(sigma_global[i]),
                            "sigma_used": float(sigma_used[i]), "codec": float(objects.globals[i]),
                            "eps": float(global_eps[i])}
                     for i, name in enumerate(ref.global_names)}
    if ref.sample is not None:
        for name, extra in zip(ref.global_names, sampled_difference(ref, objects)):
            global_scores[name].update(extra)
    status = objects.status if objects.status is not None else np.where(np.isnan(objects.values[:, 0]), "lost",
                                                                        "matched")
    loss = {**loss_test(int((status != "matched").sum()), len(raw), ref.null_loss.get("unmatched", 0),
                        ref.null_loss.get("n", 0)),
            **{k: int((status == k).sum()) for k in STATUSES[1:]}}
    identical = ref.image is not None and same_image(coded.decoded, ref.image)
    global_eps = {k: v["eps"] for k, v in global_scores.items()}
    if ref.classes is None:
        result = judge(statistics, eps, columns, ref.pooled_null_eps, global_eps, ref.n_replicas, loss=loss,
                       margins=ref.margins, primary=ref.primary, identical=identical)
    else:
        def one_class(rows, margins):
            # the class's own objects against their own second acquisitions (noisestat.score._classes)
            pooled = ref.pooled_null_eps[class_blocks(rows, len(ref.pooled_null_eps))]
            stats = codec_statistics(eps[rows], columns, band_counts(pooled, columns), margin=margins.shift,
                                     keep=keep_for_spread(margins.spread, ref.n_replicas),
                                     beyond_margin=margins.shift * eps_scale(ref.n_replicas))
            lost = loss_test(int((status[rows] != "matched").sum()), int(rows.sum()),
                             ref.null_loss.get("unmatched", 0), ref.null_loss.get("n", 0))
            return judge(stats, eps[rows], columns, pooled, global_eps, ref.n_replicas, loss=lost, margins=margins,
                         primary=ref.primary, identical=identical)

        result = judge_classes(one_class, ref.classes.raw, ref.classes.objects, ref.margins)
    size = columns.index(size_column(ref.raw_labels.ndim))
    area = difference_stats(objects.values[:, size] - raw.values[:, size])
    return CodecScore(coded.spec, coded.compression_ratio, coded.n_bytes, coded.info, objects, eps, parameters,
                      global_scores, result.tolerable, result.reasons, statistics, area, loss, verdict=result)


def sampled_difference(ref: Reference, objects: ImageObjects) -> list[dict]:
    """A ``--sample`` run's sampling standard errors of one image's globals against the raw ones, per
    global: ``sampling_se`` (the codec's extrapolated total) and ``difference_sampling_se``, the error of
    the extrapolated raw - codec difference from the sampled tiles' paired differences (both images
    judged on the same tiles: the tiles' own variation cancels; NaN for a load, a ratio)."""
    raw, other, sample = ref.raw_objects.sampled, objects.sampled, ref.sample
    out = []
    for j in range(len(ref.global_names)):
        d = raw["tile_totals"][:, j] - other["tile_totals"][:, j]
        se = extrapolate_global(d, sample.n_tiles).se if np.all(np.isfinite(d)) else math.nan
        out.append({"sampling_se": float(other["se"][j]), "difference_sampling_se": float(se)})
    return out
