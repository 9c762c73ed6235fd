"""Hostile model files: load_model refuses them in one line, never crashes, hangs or over-allocates.

scikit-learn's compiled tree traversal trusts the node table it is given: an out-of-range child or
feature index reads outside its arrays (a segmentation fault), a node that is its own child loops
forever. These tests train a tiny real model, damage its file in several hundred ways and load and
use each damaged file in a separate process with a timeout, so that a crash or a hang is seen as one.
"""

import io
import json
import struct
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from noisestat import ModelError, PixelClassifier, load_model, save_model
from noisestat.predict import _forest as classifier_module
from noisestat.predict import feature_names
from noisestat.simulate import acquire, simulate_scene, sparse_labels

from conftest import CAMERA

SIGMAS = (1, 2)
N_FEATURES = len(feature_names(SIGMAS))
NODE_FIELDS = ("left_child", "right_child", "feature", "threshold", "impurity", "n_node_samples",
               "weighted_n_node_samples", "missing_go_to_left")

# Loads and uses every model file named on stdin; one line per file, flushed before and after,
# so that the parent can name the file that crashed or hung the process.
HARNESS = r"""
import sys, numpy as np
from noisestat import ModelError, load_model
image = np.load(sys.argv[1])
for name in sys.stdin.read().split():
    print("START", name, flush=True)
    try:
        proba = load_model(name).predict_proba(image)
        ok = proba.shape == image.shape and np.isfinite(proba).all() and ((proba >= 0) & (proba <= 1)).all()
        outcome = "ok" if ok else "BADPREDICTION"
    except ModelError as exc:
        text = str(exc)
        outcome = "refused " + text if "\n" not in text and text.startswith(name + ": ") else "BADMESSAGE " + repr(text)
    except BaseException as exc:
        outcome = "UNEXPECTED " + type(exc).__name__ + ": " + repr(str(exc))[:200]
    print("END", name, outcome, flush=True)
"""


def run_harness(paths, image_path, timeout=120):
    """Run HARNESS on ``paths``; return {path: outcome}, failing on a crash or a hang."""
    try:
        done = subprocess.run([sys.executable, "-c", HARNESS, str(image_path)], input="\n".join(map(str, paths)),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        started = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("START")]
        pytest.fail(f"loading model files hung (over {timeout} s) at {started[-1] if started else '?'}")
    outcomes, current = {}, None
    for line in done.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "START":
            current = rest
        elif kind == "END":
            name, _, outcome = rest.partition(" ")
            outcomes[name] = outcome
            current = None
    assert done.returncode >= 0, f"the process crashed (signal {-done.returncode}) loading {current}"
    assert done.returncode == 0, f"the harness failed at {current}: {done.stderr[-2000:]}"
    return outcomes


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny real model (4 trees, two feature scales) saved by save_model, its arrays and a test image."""
    d = tmp_path_factory.mktemp("model_files")
    electrons, truth = simulate_scene((96, 96), rng=5)
    raw = acquire(electrons, CAMERA, 6)
    labels = sparse_labels(truth, fraction=0.1, rng=7)
    # a few wrong labels, as a person makes them, grow trees of some depth to damage
    rng = np.random.default_rng(8)
    flip = (labels > 0) & (rng.random(labels.shape) < 0.15)
    labels[flip] = 3 - labels[flip]
    model = PixelClassifier(n_estimators=4, sigmas=SIGMAS, random_state=1).fit(raw, labels)
    path = d / "good.npz"
    save_model(model, path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k].copy() for k in z.files}
    image = raw[:32, :32]
    np.save(d / "image.npy", image)
    return {"dir": d, "path": path, "arrays": arrays, "model": model, "image": image, "image_path": d / "image.npy"}


def header_of(arrays):
    return json.loads(bytes(arrays["header"]).decode())


def with_header(arrays, header):
    out = dict(arrays)
    out["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return out


def write(path, arrays):
    # stored, not deflated: faster to write hundreds of; the deflated format is damaged in file_cases
    np.savez(path, **arrays)
    return path


def internal_and_leaf(nodes):
    inner = np.flatnonzero(nodes["left_child"] != -1)
    leaves = np.flatnonzero(nodes["left_child"] == -1)
    return int(inner[-1]), int(leaves[0])


def node_table_cases(arrays):
    """Every field of the node table set to out-of-range, negative, huge or NaN values, at three nodes."""
    ints = {"own_index": None, "-1": -1, "-2": -2, "-3": -3, "0": 0, "node_count": "n", "huge": 10**9,
            "-huge": -10**9, "2^62": 2**62, "int64_min": np.iinfo(np.int64).min}
    floats = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "-1": -1.0, "huge": 1e308, "0": 0.0}
    small = {"2": 2, "255": 255}
    for tree in (0, 2):
        nodes = arrays[f"nodes_{tree}"]
        n = len(nodes)
        inner, leaf = internal_and_leaf(nodes)
        for node in sorted({0, inner, leaf}):
            for field in NODE_FIELDS:
                kind = nodes.dtype[field]
                table = small if kind == np.uint8 else floats if kind.kind == "f" else ints
                for label, value in table.items():
                    value = node if value is None else n if value == "n" else value
                    mutated = dict(arrays)
                    mutated[f"nodes_{tree}"] = nodes.copy()
                    mutated[f"nodes_{tree}"][field][node] = value
                    yield f"t{tree}_n{node}_{field}_{label}", mutated


def value_cases(arrays):
    values = arrays["values_1"]
    for label, value in {"nan": np.nan, "inf": np.inf, "negative": -0.5}.items():
        mutated = dict(arrays)
        mutated["values_1"] = values.copy()
        mutated["values_1"][len(values) // 2, 0, 1] = value
        yield f"values_{label}", mutated


def byte_flip_cases(arrays, n_cases=60):
    rng = np.random.default_rng(20261201)
    for case in range(n_cases):
        tree = int(rng.integers(4))
        raw = arrays[f"nodes_{tree}"].copy()
        octets = raw.view(np.uint8).reshape(-1)
        for where in rng.integers(octets.size, size=int(rng.integers(1, 9))):
            octets[where] ^= np.uint8(1 << int(rng.integers(8)))
        mutated = dict(arrays)
        mutated[f"nodes_{tree}"] = raw
        yield f"flip{case}", mutated


def structure_cases(arrays):
    """Swapped arrays, wrong dtypes and shapes, missing and extra members."""
    for a, b in (("nodes_0", "nodes_1"), ("values_0", "values_1"), ("nodes_0", "values_0")):
        mutated = dict(arrays)
        mutated[a], mutated[b] = arrays[b], arrays[a]
        yield f"swap_{a}_{b}", mutated
    nodes = arrays["nodes_0"]
    other = {
        "nodes_big_endian": nodes.astype(nodes.dtype.newbyteorder(">")),
        "nodes_without_a_field": np.array([tuple(r)[:-1] for r in nodes.tolist()],
                                          dtype=[(f, nodes.dtype[f]) for f in NODE_FIELDS[:-1]]),
        "nodes_as_float": nodes["threshold"].copy(),
        "nodes_2d": np.stack([nodes, nodes]),
        "nodes_empty": nodes[:0],
        "nodes_short": nodes[:-1],
        "nodes_long": np.concatenate([nodes, nodes[-1:]]),
        "values_float32": arrays["values_0"].astype(np.float32),
        "values_3_classes": np.concatenate([arrays["values_0"], arrays["values_0"][..., :1]], axis=2),
        "values_short": arrays["values_0"][:-1],
    }
    for label, replacement in other.items():
        mutated = dict(arrays)
        mutated["values_0" if label.startswith("values") else "nodes_0"] = replacement
        yield label, mutated
    for label, drop in (("no_nodes", "nodes_3"), ("no_values", "values_3"), ("no_header", "header")):
        yield label, {k: v for k, v in arrays.items() if k != drop}
    for label, extra in (("extra_member", "extra"), ("extra_tree", "nodes_4")):
        yield label, {**arrays, extra: arrays["nodes_0"]}
    yield "header_int64", {**arrays, "header": arrays["header"].astype(np.int64)}
    yield "header_not_utf8", {**arrays, "header": np.frombuffer(b"\xff\xfe{", dtype=np.uint8)}
    yield "header_deep", {**arrays, "header": np.frombuffer(b"[" * 100_000, dtype=np.uint8)}
    yield "header_list", {**arrays, "header": np.frombuffer(b"[1, 2]", dtype=np.uint8)}


def header_cases(arrays):
    """Header fields deleted, of the wrong type, or out of range."""
    good = header_of(arrays)
    for key in good:
        header = dict(good)
        del header[key]
        yield f"del_{key}", with_header(arrays, header)
        for label, value in {"str": "x", "none": None, "bool": True, "float": 1.5, "list": [1], "dict": {},
                             "huge": 10**30, "negative": -1}.items():
            header = dict(good)
            header[key] = value
            yield f"type_{key}_{label}", with_header(arrays, header)
    n = good["trees"][0]["node_count"]
    special = {
        "sigmas_huge": {"sigmas": [1e9, 2.0]}, "sigmas_zero": {"sigmas": [0.0, 2.0]},
        "sigmas_nan": {"sigmas": [float("nan"), 2.0]}, "sigmas_empty": {"sigmas": []},
        "sigmas_more": {"sigmas": [1.0, 2.0, 4.0]}, "sigmas_swapped": {"sigmas": [2.0, 1.0]},
        "n_features_plus_one": {"n_features": good["n_features"] + 1},
        "feature_names_short": {"feature_names": good["feature_names"][:-1]},
        "feature_names_ints": {"feature_names": list(range(good["n_features"]))},
        "classes_swapped": {"classes": [2, 1]}, "classes_three": {"classes": [1, 2, 3]},
        "classes_floats": {"classes": [1.0, 2.0]},
        "n_estimators_more": {"n_estimators": 5}, "n_estimators_huge": {"n_estimators": 10**9},
        "trees_short": {"trees": good["trees"][:-1], "n_estimators": 3},
        "trees_long": {"trees": good["trees"] + good["trees"][:1], "n_estimators": 5},
        "node_count_minus_one": {"trees": [{**good["trees"][0], "node_count": n - 1}] + good["trees"][1:]},
        "node_count_huge": {"trees": [{**good["trees"][0], "node_count": 2**40}] + good["trees"][1:]},
        "max_depth_plus_one": {"trees": [{**good["trees"][0], "max_depth": good["trees"][0]["max_depth"] + 1}]
                               + good["trees"][1:]},
        "max_depth_minus_one": {"trees": [{**good["trees"][0], "max_depth": good["trees"][0]["max_depth"] - 1}]
                                + good["trees"][1:]},
        "tree_not_dict": {"trees": [[1, 2]] + good["trees"][1:]},
        "threshold_other": {"threshold": 0.7},
        "training_pixels_negative": {"training_pixels": {"background": -1, "object": 3}},
        "format_other": {"format": "other"}, "version_two": {"version": 2},
    }
    for label, change in special.items():
        yield label, with_header(arrays, {**good, **change})


def file_cases(path, out_dir):
    """Damage at the file level: truncation, flipped bytes of the compressed archive."""
    data = path.read_bytes()
    for fraction in (0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        target = out_dir / f"truncated_{fraction}.npz"
        target.write_bytes(data[:int(len(data) * fraction)])
        yield target
    rng = np.random.default_rng(7)
    for case in range(30):
        damaged = bytearray(data)
        for where in rng.integers(len(damaged), size=int(rng.integers(1, 5))):
            damaged[where] ^= 1 << int(rng.integers(8))
        target = out_dir / f"zipflip{case}.npz"
        target.write_bytes(bytes(damaged))
        yield target


def declared_size_cases(path, out_dir):
    """Archives whose zip directory or .npy header declares far more data than is there."""
    data = path.read_bytes()
    # central directory entry of the first member: uncompressed size at offset 24 of "PK\1\2"
    at = data.index(b"PK\x01\x02")
    huge = bytearray(data)
    huge[at + 24:at + 28] = struct.pack("<I", 0xF0000000)
    target = out_dir / "declared_huge.npz"
    target.write_bytes(bytes(huge))
    yield target
    # a member whose .npy header claims 10^12 nodes, in a directory entry that agrees with its bytes
    with np.load(path, allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, members["nodes_0"])
    forged = buffer.getvalue().replace(f"({len(members['nodes_0'])},)".encode(), b"(1000000000000,)", 1)
    target = out_dir / "npy_header_huge.npz"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for k, v in members.items():
            if k == "nodes_0":
                out.writestr("nodes_0.npy", forged)
            else:
                b = io.BytesIO()
                np.lib.format.write_array(b, v)
                out.writestr(f"{k}.npy", b.getvalue())
    yield target
    # duplicate member names, and a member name pointing outside
    for label, name in (("duplicate", "nodes_0.npy"), ("traversal", "../nodes_0.npy")):
        target = out_dir / f"member_{label}.npz"
        target.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate it is asked to write
            with zipfile.ZipFile(target, "a") as out:
                out.writestr(name, b"\x93NUMPY")
        yield target
    target = out_dir / "bzip2_member.npz"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_BZIP2) as out:
        for k, v in members.items():
            b = io.BytesIO()
            np.lib.format.write_array(b, v)
            out.writestr(f"{k}.npy", b.getvalue())
    yield target


def all_cases(tiny):
    d = tiny["dir"] / "cases"
    d.mkdir(exist_ok=True)
    arrays = tiny["arrays"]
    paths = []
    for generator in (node_table_cases, value_cases, byte_flip_cases, structure_cases, header_cases):
        for label, mutated in generator(arrays):
            paths.append(write(d / f"{label}.npz", mutated))
    paths += list(file_cases(tiny["path"], d))
    paths += list(declared_size_cases(tiny["path"], d))
    return paths


def test_fuzzed_model_files_are_refused_or_predict_validly(tiny):
    paths = all_cases(tiny)
    assert len(paths) > 400
    outcomes = run_harness(paths + [tiny["path"]], tiny["image_path"])
    assert set(outcomes) == {str(p) for p in paths + [tiny["path"]]}
    wrong = {name: outcome for name, outcome in outcomes.items()
             if not (outcome == "ok" or outcome.startswith("refused "))}
    assert not wrong, f"{len(wrong)} damaged files were not handled: {list(wrong.items())[:5]}"
    assert outcomes[str(tiny["path"])] == "ok"
    refused = sum(o.startswith("refused") for o in outcomes.values())
    # most mutations must be caught; those that are not (a changed threshold, a flipped low bit of an
    # impurity) still give a valid prediction, as checked above
    assert refused > 0.8 * len(paths)
    for label in ("t0_n0_left_child_own_index", "t0_n0_feature_huge", "swap_nodes_0_nodes_1", "declared_huge",
                  "npy_header_huge", "type_trees_dict", "del_sigmas", "max_depth_plus_one", "extra_member",
                  "member_duplicate", "member_traversal", "truncated_0.5", "nodes_big_endian"):
        name = str(tiny["dir"] / "cases" / f"{label}.npz")
        assert outcomes[name].startswith("refused "), (label, outcomes[name])


def test_harness_sees_a_crash(tiny, tmp_path):
    """The harness reports a process killed by a signal (so the fuzz test can fail)."""
    with pytest.raises(AssertionError, match="crashed"):
        original = globals()["HARNESS"]
        try:
            globals()["HARNESS"] = ("import os, signal; print('START x', flush=True); "
                                    "os.kill(os.getpid(), signal.SIGSEGV)")
            run_harness([tmp_path / "x.npz"], tiny["image_path"])
        finally:
            globals()["HARNESS"] = original


@pytest.mark.parametrize("case, message", [
    ("oob_child", r"tree 0 node 0: left child must be in \[1, \d+\] \(after the node\); got 1000000000$"),
    ("oob_feature", rf"tree 0 node 0: feature index must lie in \[0, {N_FEATURES - 1}\]; got 100000000$"),
    ("self_loop", r"tree 0 node 0: left child must be in \[1, \d+\] \(after the node\); got 0$"),
])
def test_acceptance_cases_are_refused_in_one_line(tiny, tmp_path, case, message):
    arrays = {k: v.copy() for k, v in tiny["arrays"].items()}
    nodes = arrays["nodes_0"]
    if case == "oob_child":
        nodes["left_child"][0] = nodes["right_child"][0] = 10**9
    elif case == "oob_feature":
        nodes["feature"][0] = 10**8
    else:
        nodes["left_child"][0] = nodes["right_child"][0] = 0
    path = write(tmp_path / f"{case}.npz", arrays)
    with pytest.raises(ModelError, match=f"^{path}: damaged model file: " + message) as info:
        load_model(path)
    assert "\n" not in str(info.value)


def test_unvalidated_table_is_really_dangerous(tiny):
    """Without the checks, scikit-learn itself walks a self-looping node table forever."""
    code = ("import numpy as np; from sklearn.tree._tree import Tree\n"
            "z = np.load(r'%s'); nodes = z['nodes_0'].copy(); nodes['left_child'][0] = nodes['right_child'][0] = 0\n"
            "t = Tree(%d, np.array([2], dtype=np.intp), 1)\n"
            "t.__setstate__({'max_depth': 3, 'node_count': len(nodes), 'nodes': nodes, 'values': z['values_0']})\n"
            "print('walking', flush=True)\n"
            "t.predict(np.zeros((1, %d), dtype=np.float32))\n") % (tiny["path"], N_FEATURES, N_FEATURES)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "walking"
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=2)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_sklearn_stores_children_after_parents():
    """The acyclicity argument of the loader: both scikit-learn tree builders number children after parents."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 6))
    y = (x[:, 0] + rng.normal(size=3000) > 0) + 1
    for kwargs in ({}, {"max_leaf_nodes": 40}):  # depth-first and best-first builders
        forest = RandomForestClassifier(n_estimators=5, max_features=2, random_state=0, **kwargs).fit(x, y)
        for tree in forest.estimators_:
            nodes = tree.tree_.__getstate__()["nodes"]
            inner = np.flatnonzero(nodes["left_child"] != -1)
            assert (nodes["left_child"][inner] > inner).all() and (nodes["right_child"][inner] > inner).all()
            leaves = nodes["left_child"] == -1
            assert (nodes["right_child"][leaves] == -1).all() and (nodes["feature"][leaves] == -2).all()


def test_loaded_model_predicts_as_the_saved_one(tiny):
    model = load_model(tiny["path"])
    np.testing.assert_array_equal(model.predict_proba(tiny["image"]), tiny["model"].predict_proba(tiny["image"]))
    assert model.describe() == tiny["model"].describe()


def test_two_parents_and_unreachable_nodes_are_refused(tiny, tmp_path):
    arrays = {k: v.copy() for k, v in tiny["arrays"].items()}
    nodes = arrays["nodes_1"]
    inner = np.flatnonzero(nodes["left_child"] != -1)
    # point the last internal node's right child at its left child: one node has two parents and
    # the old right child is unreachable; every index is still in range and after its parent
    nodes["right_child"][inner[-1]] = nodes["left_child"][inner[-1]]
    path = write(tmp_path / "dag.npz", arrays)
    with pytest.raises(ModelError, match=r"damaged model file: tree 1 node \d+: must be the child of exactly one "
                                         r"node; it is the child of (0|2)$"):
        load_model(path)


def test_declared_size_cap(tiny, tmp_path, monkeypatch):
    """The cap on the uncompressed size is read from the zip directory, before decompressing."""
    total = sum(i.file_size for i in zipfile.ZipFile(tiny["path"]).infolist())
    monkeypatch.setattr(classifier_module, "MAX_MODEL_BYTES", total - 1)
    with pytest.raises(ModelError, match=rf"members declare \d+ bytes uncompressed; the limit is {total - 1} "
                                         r"\(MAX_MODEL_BYTES\)$"):
        load_model(tiny["path"])
    monkeypatch.setattr(classifier_module, "MAX_MODEL_BYTES", total)
    load_model(tiny["path"])


def test_not_an_archive(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a noisestat model file"):
        load_model(path)


def test_node_table_of_another_scikit_learn_says_to_retrain(tiny, tmp_path):
    """A node table without a field this scikit-learn has (older versions lacked missing_go_to_left)."""
    header = header_of(tiny["arrays"])
    header["sklearn"] = "1.2.0"
    arrays = with_header(tiny["arrays"], header)
    nodes = arrays["nodes_0"]
    older = [(name, nodes.dtype[name]) for name in NODE_FIELDS[:-1]]
    arrays["nodes_0"] = np.array([row[:-1] for row in nodes.tolist()], dtype=older)
    path = write(tmp_path / "older.npz", arrays)
    with pytest.raises(ModelError, match=r"damaged model file: member nodes_0.npy holds records with fields "
                                         r"left_child, .*, weighted_n_node_samples; expected .*, missing_go_to_left "
                                         r"\(written by scikit-learn 1.2.0: retrain the model with this scikit-learn"):
        load_model(path)


def test_a_model_outside_the_file_limits_is_not_saved(small_scene, tmp_path):
    raw, labels = small_scene[:2]
    model = PixelClassifier(n_estimators=2, sigmas=(1, 2000), random_state=0).fit(raw[:64, :64], labels[:64, :64])
    with pytest.raises(ModelError, match=r"cannot save this model: header 'sigmas' must be 1 to 16 numbers in "
                                         r"\(0, 1024\]; got \[1.0, 2000.0\]$"):
        save_model(model, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
