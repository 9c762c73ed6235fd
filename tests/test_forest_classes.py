"""The forest with more than two classes: training on sparse labels 1..C, a threshold per class, the
class map (exact, tile-invariant), model files of three classes, and the two-class case unchanged."""

import io
import json
import zipfile

import numpy as np
import pytest
from scipy import ndimage as ndi

from noisestat import InputError, ModelError, PixelClassifier, load_model, save_model
from noisestat.engine import tile_grid
from noisestat.predict import check_class_labels, parse_thresholds
from noisestat.simulate import acquire, simulate_scene, sparse_labels

from conftest import CAMERA

SIGMAS = (1.0, 2.0)   # 31 features, halo 8 px: small and fast


def organ_scene(shape=(112, 112), seed=0):
    """An organ (a disc, 2) holding small bright plaques (3) on a background (1): the expected
    electrons, the true class map (1, 2, 3) and sparse labels of every class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    cy, cx = shape[0] / 2, shape[1] / 2
    organ = (yy - cy) ** 2 + (xx - cx) ** 2 < (0.38 * min(shape)) ** 2
    plaque = np.zeros(shape, dtype=bool)
    for _ in range(9):
        r, t = rng.uniform(0, 0.28 * min(shape)), rng.uniform(0, 2 * np.pi)
        py, px = cy + r * np.sin(t), cx + r * np.cos(t)
        plaque |= (yy - py) ** 2 + (xx - px) ** 2 < rng.uniform(3.5, 5.5) ** 2
    plaque &= organ
    truth = np.ones(shape, dtype=np.uint8)
    truth[organ] = 2
    truth[plaque] = 3
    electrons = 300.0 + ndi.gaussian_filter(organ * 900.0 + plaque * 2400.0, 1.0)
    draw = rng.random(shape)
    labels = np.zeros(shape, dtype=np.uint8)
    for cls, fraction in ((1, 0.05), (2, 0.05), (3, 0.3)):   # scribbles denser on the small plaques
        inside = ndi.binary_erosion(truth == cls, iterations=1)
        labels[(draw < fraction) & inside] = cls
    return electrons, truth, labels


@pytest.fixture(scope="module")
def three():
    electrons, truth, labels = organ_scene()
    raw = acquire(electrons, CAMERA, 5)
    model = PixelClassifier(n_estimators=24, sigmas=SIGMAS, random_state=3).fit(raw, labels)
    return raw, truth, labels, model


def classes_from_proba(proba, classes, thresholds):
    """The documented rule applied to scikit-learn's probabilities: class c where p_c > t_c, the
    largest p_c / t_c where several pass, else 0."""
    cols = [list(classes).index(c) for c in thresholds]
    t = np.array(list(thresholds.values()))
    p = proba[..., cols]
    passes = p > t
    ratio = np.where(passes, p / t, -np.inf)
    ids = np.array([0, *thresholds], dtype=np.uint8)
    return ids[np.where(passes.any(-1), ratio.argmax(-1) + 1, 0)]


# -- the two-class case: the masks of the early-stopped decision as it was before classes ----------

def _decide_threshold_two_classes(forest, features, column, threshold):
    """The two-class early-stopped decision as noisestat computed it before classes were added
    (kept here as the reference the class decision must reproduce, mask and evaluations)."""
    trees = forest.estimators_
    n = len(trees)
    leaf_proba = []
    for tree in trees:
        value = tree.tree_.value[:, 0, :tree.n_classes_]
        normalizer = value.sum(axis=1)
        normalizer[normalizer == 0.0] = 1.0
        leaf_proba.append(np.ascontiguousarray(value[:, column] / normalizer))
    features = np.ascontiguousarray(features, dtype=np.float32)
    total = len(features)
    mask = np.zeros(total, dtype=bool)
    active = np.arange(total)
    rows = features
    votes = np.zeros(total)
    high, margin = threshold * n, 1e-9 * n
    evaluations = 0
    for k, tree in enumerate(trees, 1):
        if not len(active):
            break
        votes += leaf_proba[k - 1][tree.tree_.apply(rows)]
        evaluations += len(active)
        left = n - k
        if k == n or (k <= high and left >= high):
            continue
        settled_yes = votes > high + margin
        settled = settled_yes | (votes + left < high - margin)
        done = int(settled.sum())
        if done and (done * 20 >= len(active) or k % 16 == 0):
            mask[active[settled_yes]] = True
            keep = ~settled
            active, votes, rows = active[keep], votes[keep], rows[keep]
    if len(active):
        mask[active] = votes / n > threshold
    return mask, evaluations


@pytest.fixture(scope="module")
def two():
    electrons, truth = simulate_scene((96, 96), rng=21)
    raw = acquire(electrons, CAMERA, 22)
    model = PixelClassifier(n_estimators=30, sigmas=SIGMAS, random_state=23).fit(raw, sparse_labels(truth, rng=24))
    return raw, truth, model


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.7])
def test_two_class_masks_and_evaluations_are_as_before(two, threshold):
    raw, _, model = two
    features = model.features(raw).reshape(-1, model.n_features_in_)
    expected, evaluations = _decide_threshold_two_classes(model.forest_, features, 1, threshold)
    assert 0 < expected.sum() < expected.size and evaluations < features.shape[0] * model.n_estimators
    counts = {}
    mask = model.predict_mask(raw, counts=counts, thresholds=None if threshold == 0.5 else {2: threshold})
    np.testing.assert_array_equal(mask.reshape(-1), expected)
    assert counts["tree_evaluations"] == evaluations
    classes = model.predict_classes(raw, thresholds={2: threshold})
    np.testing.assert_array_equal(classes.reshape(-1), np.where(expected, 2, 0))
    np.testing.assert_array_equal(mask, model.predict_proba(raw) > threshold)


def test_two_class_model_keeps_format_1_and_old_files_load(two, tmp_path):
    raw, _, model = two
    save_model(model, tmp_path / "m.npz")
    header = _header(tmp_path / "m.npz")
    assert header["version"] == 1 and header["classes"] == [1, 2] and header["threshold"] == 0.5
    # a file written before classes were added: no thresholds, no per-class pixel counts
    old = {k: v for k, v in header.items() if k != "thresholds"}
    old["training_pixels"] = {k: v for k, v in header["training_pixels"].items() if k != "by_class"}
    _rewrite(tmp_path / "m.npz", tmp_path / "old.npz", old)
    loaded = load_model(tmp_path / "old.npz")
    np.testing.assert_array_equal(loaded.predict_mask(raw), model.predict_mask(raw))
    assert loaded.describe() == model.describe()
    _rewrite(tmp_path / "m.npz", tmp_path / "old07.npz", {**old, "threshold": 0.7})
    with pytest.raises(ModelError, match="'threshold' must be 0.5"):
        load_model(tmp_path / "old07.npz")


def test_two_class_threshold_is_saved_and_read_back(two, tmp_path):
    raw, _, model = two
    strict = PixelClassifier(**{**model.get_params(), "thresholds": {2: 0.8}}).fit(
        raw, sparse_labels(two[1], rng=24))
    save_model(strict, tmp_path / "s.npz")
    assert _header(tmp_path / "s.npz")["threshold"] == 0.8
    loaded = load_model(tmp_path / "s.npz")
    assert loaded.class_thresholds() == {2: 0.8}
    np.testing.assert_array_equal(loaded.predict_mask(raw), model.predict_proba(raw) > 0.8)


# -- three classes ---------------------------------------------------------------------------------

def test_three_classes_are_recovered(three):
    raw, truth, labels, model = three
    assert list(model.classes_) == [1, 2, 3]
    assert model.n_training_pixels_ == {c: int((labels == c).sum()) for c in (1, 2, 3)}
    classes = model.predict_classes(raw)
    assert classes.dtype == np.uint8 and set(np.unique(classes)) == {0, 2, 3}
    expected = np.where(truth == 1, 0, truth)
    assert (classes == expected).mean() > 0.97
    for cls in (2, 3):   # each class found where it is, and rarely where it is not
        found = classes == cls
        assert (found & (expected == cls)).sum() > 0.85 * (expected == cls).sum()
        assert (found & (expected != cls)).sum() < 0.1 * (expected == cls).sum()
    np.testing.assert_array_equal(model.predict_mask(raw), classes > 0)


@pytest.mark.parametrize("thresholds", [None, {2: 0.7, 3: 0.5}, {2: 0.2, 3: 0.3}, {3: 0.05}])
def test_class_map_is_scikit_learns_probabilities_thresholded(three, thresholds):
    raw, _, _, model = three
    proba = model.predict_class_proba(raw)
    np.testing.assert_allclose(proba.sum(-1), 1.0)
    limits = model.class_thresholds(thresholds)
    counts = {}
    classes = model.predict_classes(raw, thresholds=thresholds, counts=counts)
    np.testing.assert_array_equal(classes, classes_from_proba(proba, model.classes_, limits))
    assert counts["tree_evaluations"] < raw.size * model.n_estimators   # the early stop does stop early
    if thresholds == {2: 0.2, 3: 0.3}:   # several classes pass somewhere: the ratio rule decides there
        both = ((proba[..., 1] > 0.2) & (proba[..., 2] > 0.3))
        assert both.any()


def test_thresholds_move_the_class_boundaries(three):
    raw, _, _, model = three
    base = model.predict_classes(raw)
    strict_organ = model.predict_classes(raw, thresholds={2: 0.8})
    assert ((strict_organ == 2) <= (base == 2)).all() and (strict_organ == 2).sum() < (base == 2).sum()
    np.testing.assert_array_equal(strict_organ == 3, base == 3)   # plaques keep their 0.5
    paper = PixelClassifier(**{**model.get_params(), "thresholds": parse_thresholds("2=0.7,3=0.5", model.classes_)})
    paper.fit(raw, three[2])
    assert paper.class_thresholds() == {2: 0.7, 3: 0.5}
    np.testing.assert_array_equal(paper.predict_classes(raw), model.predict_classes(raw, thresholds={2: 0.7}))
    loose_plaque = model.predict_classes(raw, thresholds={2: 0.7, 3: 0.2})
    tight_plaque = model.predict_classes(raw, thresholds={2: 0.7, 3: 0.5})
    assert ((tight_plaque == 3) <= (loose_plaque == 3)).all()
    assert (loose_plaque == 3).sum() > (tight_plaque == 3).sum()


@pytest.mark.parametrize("tile", [16, 37])
def test_class_map_does_not_depend_on_the_tile(three, tile):
    raw, _, _, model = three
    whole = model.predict_classes(raw, thresholds={2: 0.6})
    tiled = np.full(raw.shape, 255, dtype=np.uint8)
    for t in tile_grid(raw.shape, tile, model.halo(2)):
        region = raw[t.region]
        if t.index[0] % 2:   # the engine's way: the core's features from the region, then the core
            features = model.features(region, inner=t.inner)
            tiled[t.core] = model.predict_classes(region[t.inner], features=features, thresholds={2: 0.6})
        else:
            tiled[t.core] = model.predict_classes(region, thresholds={2: 0.6})[t.inner]
    np.testing.assert_array_equal(tiled, whole)


def test_three_class_model_file_round_trip(three, tmp_path):
    raw, _, _, model = three
    tuned = PixelClassifier(**{**model.get_params(), "thresholds": {2: 0.7}}).fit(raw, three[2])
    save_model(tuned, tmp_path / "m.npz")
    header = _header(tmp_path / "m.npz")
    assert header["version"] == 2 and header["classes"] == [1, 2, 3]
    assert header["thresholds"] == {"2": 0.7, "3": 0.5} and "threshold" not in header
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.describe() == tuned.describe() and list(loaded.classes_) == [1, 2, 3]
    np.testing.assert_array_equal(loaded.predict_classes(raw), tuned.predict_classes(raw))
    np.testing.assert_array_equal(loaded.predict_class_proba(raw), tuned.predict_class_proba(raw))
    with pytest.raises(ModelError, match="predict_class_proba"):
        loaded.predict_proba(raw)


def _header(path):
    with zipfile.ZipFile(path) as archive, archive.open("header.npy") as handle:
        return json.loads(np.load(handle).tobytes())


def _rewrite(source, target, header):
    """A copy of the model file ``source`` with another header."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    members["header.npy"] = buffer.getvalue()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


HOSTILE = {
    "classes_two_in_format_2": ({"classes": [1, 2]}, "'classes' must be 3 or more"),
    "classes_unsorted": ({"classes": [1, 3, 2]}, "'classes' must be 3 or more"),
    "classes_repeated": ({"classes": [1, 2, 2]}, "'classes' must be 3 or more"),
    "classes_no_background": ({"classes": [2, 3, 4]}, "'classes' must be 3 or more"),
    "classes_beyond_uint8": ({"classes": [1, 2, 256]}, "'classes' must be 3 or more"),
    "classes_floats": ({"classes": [1.0, 2.0, 3.0]}, "'classes' must be 3 or more"),
    "classes_four": ({"classes": [1, 2, 3, 4], "thresholds": {"2": 0.5, "3": 0.5, "4": 0.5},
                      "training_pixels": {"background": 1, "object": 2, "by_class": {"1": 1, "2": 1, "3": 1, "4": 0}}},
                     None),   # a consistent header, but the trees hold 3 columns
    "thresholds_missing": ({"thresholds": {"2": 0.5}}, "'thresholds' must give"),
    "thresholds_background": ({"thresholds": {"1": 0.5, "2": 0.5, "3": 0.5}}, "'thresholds' must give"),
    "thresholds_one": ({"thresholds": {"2": 1.0, "3": 0.5}}, "'thresholds' must give"),
    "thresholds_zero": ({"thresholds": {"2": 0.5, "3": 0}}, "'thresholds' must give"),
    "thresholds_text": ({"thresholds": {"2": "0.5", "3": 0.5}}, "'thresholds' must give"),
    "thresholds_list": ({"thresholds": [0.5, 0.5]}, "'thresholds' must be a JSON dict"),
    "no_thresholds": ({"thresholds": None}, "header has no 'thresholds'"),
    "by_class_missing": ({"training_pixels": {"background": 1, "object": 2}}, "by_class"),
    "by_class_disagrees": ({"training_pixels": {"background": 1, "object": 2,
                                                "by_class": {"1": 1, "2": 1, "3": 5}}}, "disagree"),
    "version_three": ({"version": 3}, "not a noisestat pixel classifier"),
}


@pytest.fixture(scope="module")
def three_file(three, tmp_path_factory):
    path = tmp_path_factory.mktemp("three") / "m.npz"
    save_model(three[3], path)
    return path


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_three_class_headers_are_refused_in_one_line(three_file, tmp_path, case):
    change, message = HOSTILE[case]
    header = {**_header(three_file), **change}
    header = {k: v for k, v in header.items() if v is not None}
    target = tmp_path / f"{case}.npz"
    _rewrite(three_file, target, header)
    with pytest.raises(ModelError) as info:
        load_model(target)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{target}: ")
    if message is not None:
        assert message in text
    else:
        assert "values have shape" in text


def test_two_class_header_cannot_claim_three_classes(two, tmp_path):
    save_model(two[2], tmp_path / "m.npz")
    header = _header(tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", {**header, "classes": [1, 2, 3]})
    with pytest.raises(ModelError, match=r"'classes' must be \[1, 2\] in format 1"):
        load_model(tmp_path / "bad.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "bad2.npz", {**header, "thresholds": {"2": 0.6}})
    with pytest.raises(ModelError, match="'thresholds' must be"):
        load_model(tmp_path / "bad2.npz")


# -- labels and thresholds given by the user ------------------------------------------------------

def test_parse_thresholds():
    assert parse_thresholds("2=0.7,3=0.5", [1, 2, 3]) == {2: 0.7, 3: 0.5}
    assert parse_thresholds(" 3 = 0.25 ", np.array([1, 2, 3])) == {3: 0.25}


@pytest.mark.parametrize("text, message", [
    ("4=0.5", "class 4 is not one of the model's classes of object (2, 3)"),
    ("1=0.5", "class 1 is the background"),
    ("2=0", "needs a probability in (0, 1)"), ("2=1", "needs a probability in (0, 1)"),
    ("2=1.5", "needs a probability in (0, 1)"), ("2=nan", "needs a probability in (0, 1)"),
    ("2=x", "needs a probability in (0, 1)"), ("2=0.5,2=0.6", "class 2 is given twice"),
    ("2:0.5", "is not CLASS=PROBABILITY"), ("2=", "is not CLASS=PROBABILITY"), ("", "expected CLASS=PROBABILITY"),
    ("2=0.5,", "is not CLASS=PROBABILITY"), ("-2=0.5", "is not CLASS=PROBABILITY"),
])
def test_parse_thresholds_refuses_in_one_line(text, message):
    with pytest.raises(InputError) as info:
        parse_thresholds(text, [1, 2, 3])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_thresholds_and_labels_are_clear_errors(three):
    raw, _, labels, model = three
    with pytest.raises(ModelError, match="class 4 is not one of this model's classes 2, 3"):
        model.predict_classes(raw[:20, :20], thresholds={4: 0.5})
    with pytest.raises(ModelError, match=r"class 2 needs a probability in \(0, 1\)"):
        model.predict_mask(raw[:20, :20], thresholds={2: 1.0})
    with pytest.raises(ModelError, match="class 1 is not one of"):
        PixelClassifier(n_estimators=2, sigmas=SIGMAS, thresholds={1: 0.5}, random_state=0).fit(raw, labels)
    too_high = labels.astype(np.int32)
    too_high[0, 0] = 256
    with pytest.raises(InputError, match=r"from 2 to 255; found \[256\]"):
        check_class_labels(too_high)
    with pytest.raises(InputError, match="no pixel is labelled 1"):
        check_class_labels(np.where(labels == 1, 0, labels))
    with pytest.raises(InputError, match="no pixel is labelled 2 or more"):
        PixelClassifier(n_estimators=2, sigmas=SIGMAS).fit(raw, np.where(labels > 1, 0, labels))
    with pytest.raises(InputError, match="must be integers"):
        check_class_labels(labels.astype(float))
    check_class_labels(np.where(labels == 2, 7, labels))   # class ids need not be consecutive


def test_training_tile_by_tile_on_three_classes_equals_the_whole_image(three):
    from noisestat.predict._training import new_forest, train

    raw, _, labels, model = three
    tiled = new_forest(7, 2, 1, thresholds={3: 0.4})
    tiled.set_params(n_estimators=model.n_estimators, sigmas=model.sigmas)
    timing = {}
    cache = train(tiled, raw, labels, 40, 1, timing)
    whole = new_forest(7, 2, 1, thresholds={3: 0.4}).set_params(n_estimators=model.n_estimators, sigmas=model.sigmas)
    whole.fit(raw, labels)
    assert list(tiled.classes_) == [1, 2, 3] and tiled.n_training_pixels_ == whole.n_training_pixels_
    assert tiled.describe() == whole.describe() and tiled.describe()["thresholds"] == {"2": 0.5, "3": 0.4}
    np.testing.assert_array_equal(tiled.predict_classes(raw), whole.predict_classes(raw))
    assert cache is not None and len(cache) == 9   # the raw features kept, per tile
    with pytest.raises(InputError, match="found \\[300\\]"):
        wide = labels.astype(np.int32)
        wide[labels == 3] = 300
        train(new_forest(7, 2, 1), raw, wide, 40, 1, timing)
