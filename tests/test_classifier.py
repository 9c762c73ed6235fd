import numpy as np
import pytest
from sklearn.base import clone

from noisestat import ModelError, PixelClassifier, load_model, save_model


@pytest.fixture(scope="module")
def fitted(small_scene):
    raw, labels, _, _ = small_scene
    return PixelClassifier(n_estimators=30, random_state=4).fit(raw, labels)


def test_estimator_contract():
    clf = PixelClassifier(n_estimators=7, random_state=np.random.default_rng(1))
    params = clf.get_params()
    assert params["n_estimators"] == 7 and params["max_features"] == 2
    assert clone(clf).get_params()["n_estimators"] == 7
    defaults = PixelClassifier().get_params()
    assert defaults["n_estimators"] == 200 and defaults["max_features"] == 2


def test_predict_before_fit_is_a_clear_error():
    with pytest.raises(ModelError, match="not fitted"):
        PixelClassifier().predict(np.zeros((8, 8)))


def test_segments_the_scene(fitted, small_scene):
    raw, _, truth, _ = small_scene
    mask = fitted.predict(raw)
    accuracy = (mask == truth).mean()
    assert accuracy > 0.95
    seg = fitted.segment(raw)
    assert seg.max() > 5 and seg.dtype == np.int32
    assert fitted.n_training_pixels_[1] > 0 and fitted.n_training_pixels_[2] > 0


def test_seed_is_recorded_and_reproduces(fitted, small_scene):
    raw, labels, _, _ = small_scene
    again = PixelClassifier(n_estimators=30, random_state=4).fit(raw, labels)
    assert again.seed_ == fitted.seed_
    np.testing.assert_array_equal(again.predict_proba(raw), fitted.predict_proba(raw))
    other = PixelClassifier(n_estimators=30, random_state=5).fit(raw, labels)
    assert other.seed_ != fitted.seed_
    assert not np.array_equal(other.predict_proba(raw), fitted.predict_proba(raw))
    parallel = PixelClassifier(n_estimators=30, random_state=4, n_jobs=2).fit(raw, labels)
    np.testing.assert_array_equal(parallel.predict_proba(raw), fitted.predict_proba(raw))


def test_save_load_round_trip_is_exact(tmp_path, fitted, small_scene):
    raw = small_scene[0]
    save_model(fitted, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict_proba(raw), fitted.predict_proba(raw))
    assert loaded.describe() == fitted.describe()


def test_pickle_files_are_refused(tmp_path, fitted):
    import pickle

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(fitted))
    with pytest.raises(ModelError, match="not a noisestat model file"):
        load_model(path)
    # an npz holding an object array needs pickle to load: refused as well
    np.savez(tmp_path / "obj.npz", header=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelError, match="not a noisestat model file"):
        load_model(tmp_path / "obj.npz")


def test_labels_must_match_and_hold_both_classes(small_scene):
    raw = small_scene[0]
    from noisestat import InputError

    with pytest.raises(InputError, match="shape"):
        PixelClassifier().fit(raw, np.zeros((5, 5), np.uint8))
    only_bg = np.zeros(raw.shape, np.uint8)
    only_bg[0, :5] = 1
    with pytest.raises(InputError, match="no pixel is labelled 2"):
        PixelClassifier().fit(raw, only_bg)


def test_precomputed_features_give_the_same_mask_and_are_checked(fitted, small_scene):
    from noisestat.predict import weka_features

    raw = small_scene[0]
    features = weka_features(raw, sigmas=fitted.scales)
    np.testing.assert_array_equal(fitted.predict_proba(raw, features=features), fitted.predict_proba(raw))
    with pytest.raises(ModelError, match="precomputed features must have the shape"):
        fitted.predict(raw, features=features[:-1])
