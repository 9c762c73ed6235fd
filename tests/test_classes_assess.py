"""Several classes of object (sparse labels 1 background, 2 organ, 3 plaque): a threshold per class, each
class's objects labelled on their own and matched within their class, globals per class and the load of
class 3 on class 2, each with its eps; checked against the simulated scene's truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

import noisestat
from noisestat._tasks import global_totals, measure
from noisestat.engine import label_mask
from noisestat.engine._tiles import object_classes
from noisestat.errors import InputError
from noisestat.io._readers import check_labels

_SHAPE = (128, 128)
_ORGANS = [(36, 36), (36, 92), (92, 36), (92, 92)]


def _scene(seed=1):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:_SHAPE[0], :_SHAPE[1]]
    truth = np.zeros(_SHAPE, np.uint8)
    electrons = np.full(_SHAPE, 20.0)
    for cy, cx in _ORGANS:
        organ = (yy - cy) ** 2 + (xx - cx) ** 2 <= 22 ** 2
        truth[organ], electrons[organ] = 2, 200
        for dy, dx in ((-9, -9), (8, 6)):  # two plaques inside each organ
            plaque = (yy - cy - dy) ** 2 + (xx - cx - dx) ** 2 <= 4 ** 2
            truth[plaque], electrons[plaque] = 3, 900
    electrons = ndi.gaussian_filter(electrons, 1)
    return truth, electrons, rng


def _acquire(electrons, rng):
    counts = 100 + 0.5 * (rng.poisson(electrons) + rng.normal(0, 2, electrons.shape))
    return np.clip(np.rint(counts), 0, 4095).astype(np.uint16)


@pytest.fixture(scope="module")
def assessment():
    truth, electrons, rng = _scene()
    image = _acquire(electrons, rng)
    labels = np.zeros(_SHAPE, np.uint8)
    pick = rng.random(_SHAPE)
    labels[(truth == 0) & (pick < 0.03)] = 1
    labels[(truth == 2) & (pick < 0.03)] = 2
    labels[(truth == 3) & (pick < 0.3)] = 3
    profile = noisestat.CameraProfile(gain_dn_per_e=0.5, offset_dn=100, read_noise_dn=1.0, bit_depth=12)
    return noisestat.assess(image, profile, ["lossless", "bitdepth:bits=6,mode=shift"], labels=labels, replicas=4,
                            thresholds={2: 0.6, 3: 0.5}), truth


def test_each_class_is_found_as_in_the_truth(assessment):
    a, truth = assessment
    assert sorted(a.raw.classes.tolist()) == [2] * 4 + [3] * 8
    names = a.global_names
    assert names == ("N_tot", "A_tot", "N_tot[2]", "A_tot[2]", "N_tot[3]", "A_tot[3]", "load[3]")
    raw = dict(zip(names, a.raw_objects.globals))
    true_load = (truth == 3).sum() / (truth >= 2).sum()
    assert raw["N_tot[2]"] == 4 and raw["N_tot[3]"] == 8
    assert abs(raw["load[3]"] - true_load) < 0.2 * true_load
    assert a.provenance["threshold"] == {"2": 0.6, "3": 0.5}


def test_lossless_gives_eps_zero_for_every_class_and_the_load(assessment):
    a, _ = assessment
    lossless = a.codecs[0]
    assert all(v["eps"] == 0 for v in lossless.global_scores.values())
    assert np.all(np.nan_to_num(lossless.eps) == 0)


def test_a_coarse_codec_moves_the_per_class_globals(assessment):
    a, _ = assessment
    coarse = a.codecs[1].global_scores
    assert max(abs(coarse[k]["eps"]) for k in ("A_tot[2]", "A_tot[3]", "load[3]")) > 4


def test_a_class_map_is_labelled_class_by_class():
    classes = np.zeros((6, 12), np.uint8)
    classes[1:3, 1:5] = 2
    classes[1:3, 5:9] = 3   # touches the class-2 object: still two objects
    classes[4, 10:] = 2
    labels = label_mask(classes)
    assert labels.max() == 3
    ids = object_classes(labels, classes)
    assert ids[labels[1, 1]] == 2 and ids[labels[1, 6]] == 3 and ids[labels[4, 10]] == 2


def test_the_load_counts_plaques_that_touch_the_organ_only():
    classes = np.zeros((20, 40), np.uint8)
    classes[2:18, 2:18] = 2
    classes[6:10, 6:10] = 3          # inside the organ: 16 px
    classes[5:9, 30:34] = 3          # far from it: not counted
    labels = label_mask(classes)
    table = measure(labels, classes=object_classes(labels, classes))
    totals = global_totals(table, labels, (2, 3))
    assert totals["N_tot[3]"] == 2 and totals["A_tot[3]"] == 32
    assert totals["load[3]"] == pytest.approx(16 / (256 - 16 + 16))


def test_labels_of_several_classes_are_accepted_and_others_refused():
    labels = np.zeros((10, 10), np.uint8)
    labels[0, 0], labels[0, 1], labels[0, 2] = 1, 2, 3
    check_labels(labels)
    only_objects = labels.copy()
    only_objects[0, 0] = 0
    with pytest.raises(InputError, match="background"):
        check_labels(only_objects)
    big = labels.astype(np.int32)
    big[1, 1] = 300
    with pytest.raises(InputError, match="2..255"):
        check_labels(big)


def test_the_raw_results_table_says_each_objects_class(assessment, tmp_path):
    from noisestat.report._tables import raw_results_csv

    a, _ = assessment
    rows = raw_results_csv(a).splitlines()
    assert rows[0].split(",")[-1] == "Class"
    assert sorted(int(r.split(",")[-1]) for r in rows[1:]) == [2] * 4 + [3] * 8


def _class_verdict(eps, null, raw_classes, rng):
    """The verdict of several classes of object as the pipeline forms it (noisestat.score._classes)."""
    from noisestat.score import VOLUME_PRIMARY, Margins, codec_statistics, eps_scale, judge, keep_for_spread
    from noisestat.score._classes import class_blocks, judge_classes
    from noisestat.score._null import band_counts

    columns = list(VOLUME_PRIMARY)
    g = {k: float(np.sqrt(2) * rng.standard_normal()) for k in ("N_tot", "V_tot", "SA_tot")}

    def one(rows, margins):
        pooled = null[class_blocks(rows, len(null))]
        stats = codec_statistics(eps[rows], columns, band_counts(pooled, columns), margin=margins.shift,
                                 keep=keep_for_spread(margins.spread, 10), beyond_margin=margins.shift * eps_scale(10))
        return judge(stats, eps[rows], columns, pooled, g, 10, margins=margins,
                     loss={"n_unmatched": 0, "n_raw": int(rows.sum()), "null_unmatched": 0,
                           "null_n": 6 * int(rows.sum())})

    return judge_classes(one, raw_classes, (2, 3), Margins())


def test_a_codec_that_ruins_a_small_class_is_not_tolerable_though_pooled_it_would_pass():
    # 200 organs as a second acquisition would leave them; the 20 plaques' Mean and centroid moved far:
    # pooled over classes the plaques are 9 % of the objects and pass; judged per class they do not
    from noisestat.score import VOLUME_PRIMARY

    rng = np.random.default_rng(0)
    columns = list(VOLUME_PRIMARY)
    n2, n3 = 200, 20
    raw_classes = np.array([2] * n2 + [3] * n3)

    def second(n, dof):
        return np.sqrt(2) * rng.standard_t(dof, size=(n, len(columns)))

    null = np.concatenate([second(n2 + n3, 7) for _ in range(5)] + [second(n2 + n3, 9)])
    eps = second(n2 + n3, 9)
    eps[n2:, [columns.index(p) for p in ("Mean", "Centroid.X", "Centroid.Y", "Centroid.Z")]] += 20
    verdict = _class_verdict(eps, null, raw_classes, rng)
    assert verdict.outcome == "not tolerable"
    assert all(r.startswith("class 3:") for r in verdict.reasons)
    assert {c["class"] for c in verdict.criteria} == {2, 3}
    # the same scene without the damage: no class is shown beyond
    clean = second(n2 + n3, 9)
    assert _class_verdict(clean, null, raw_classes, rng).outcome != "not tolerable"


def test_a_second_acquisitions_class_change_counts_as_a_loss_as_a_codecs_does():
    from noisestat.measure import pair_unmatched

    a = np.zeros((10, 20), np.int32)
    a[1:4, 1:4], a[1:4, 10:13] = 1, 2
    # the same objects; the second one's class flips from 2 to 3
    assert pair_unmatched(a, a, None, None, "iou", a_classes=[2, 2], b_classes=[2, 3]) == (1, 2)
    assert pair_unmatched(a, a, None, None, "iou", a_classes=[2, 2], b_classes=[2, 2]) == (0, 2)
    assert pair_unmatched(a, a, None, None, "iou") == (0, 2)
