import codecs
import copyreg
import dataclasses
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flame_fixtures import (RunsCommand, make_small_head_model, official_layout_dict, write_official_layout_pkl,
                            write_python2_pickle)
from joker_core.errors import JokerError
from joker_core.flame_format import load_head_model, save_head_model

MODEL = make_small_head_model()
CORE_FIELDS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "faces")
TESTS_DIR = Path(__file__).parent
SERVER_DIR = TESTS_DIR.parent / "server"

# Runs in a fresh interpreter where chumpy and scipy cannot be imported at all.
LOAD_WITHOUT_CHUMPY_OR_SCIPY = """
import importlib.abc, json, sys

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("chumpy", "scipy"):
            raise ImportError(f"{name} is blocked in this test")

sys.meta_path.insert(0, Blocker())
sys.modules["chumpy"] = None
sys.modules["scipy"] = None
from joker_core.flame_format import load_head_model

model = load_head_model(sys.argv[1])
leaked = sorted(m for m, mod in sys.modules.items() if m.split(".")[0] in ("chumpy", "scipy") and mod is not None)
print(json.dumps({"n_shape": model.n_shape, "n_expr": model.n_expr, "leaked": leaked,
                  "faces_dtype": str(model.faces.dtype), "metadata": model.metadata}))
np = sys.modules["numpy"]
np.savez(sys.argv[2], **{f: getattr(model, f) for f in %r})
""" % (CORE_FIELDS,)


@pytest.mark.parametrize("protocol", [2, 0])
def test_official_layout_loads_where_neither_chumpy_nor_scipy_can_be_imported(tmp_path, protocol):
    source = tmp_path / "generic_model.pkl"
    write_official_layout_pkl(source, MODEL, protocol=protocol)
    arrays = tmp_path / "arrays.npz"
    env = {**os.environ, "PYTHONPATH": str(SERVER_DIR)}
    done = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_CHUMPY_OR_SCIPY, str(source), str(arrays)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["leaked"] == []
    assert (summary["n_shape"], summary["n_expr"]) == (300, 100)
    assert summary["faces_dtype"] == "int64"
    assert summary["metadata"]["bs_style"] == "lbs" and summary["metadata"]["source_file"] == source.name
    with np.load(arrays) as loaded:
        for field in CORE_FIELDS:
            assert np.array_equal(loaded[field], getattr(MODEL, field)), field


def test_the_blocker_is_real_a_plain_pickle_load_of_the_same_file_fails(tmp_path):
    source = tmp_path / "generic_model.pkl"
    write_official_layout_pkl(source, MODEL)
    script = LOAD_WITHOUT_CHUMPY_OR_SCIPY.replace("model = load_head_model(sys.argv[1])",
                                                  "import pickle; pickle.load(open(sys.argv[1], 'rb'), encoding='latin1')")
    done = subprocess.run([sys.executable, "-c", script, str(source), str(tmp_path / "x.npz")],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SERVER_DIR)}, timeout=120)
    assert done.returncode != 0 and "ModuleNotFoundError: No module named 'scipy.sparse'" in done.stderr


@pytest.mark.parametrize("components, split", [(350, (300, 50)), (120, (120, 0))])
def test_files_with_fewer_components_split_identity_first(tmp_path, components, split):
    model = dataclasses.replace(MODEL, shapedirs=MODEL.shapedirs[:, :, :components], n_shape=min(components, 300),
                                n_expr=max(components - 300, 0))
    write_official_layout_pkl(tmp_path / "trimmed.pkl", model)
    loaded = load_head_model(tmp_path / "trimmed.pkl")
    assert (loaded.n_shape, loaded.n_expr) == split
    assert np.array_equal(loaded.shapedirs, model.shapedirs)


@pytest.mark.parametrize("call, named", [
    (lambda marker: (os.system, (f"touch {marker}",)), "posix.system"),
    (lambda marker: (eval, (f"open({str(marker)!r}, 'w')",)), "builtins.eval"),
    (lambda marker: (subprocess.call, (["touch", str(marker)],)), "subprocess.call"),
])
def test_a_pickle_that_would_run_code_is_refused_before_running_it(tmp_path, call, named):
    marker = tmp_path / "ran"
    layout = official_layout_dict(MODEL)
    layout["bs_style"] = RunsCommand(call(marker))  # hidden inside an otherwise valid FLAME dict
    path = tmp_path / "evil.pkl"
    write_python2_pickle(layout, path)
    with pytest.raises(JokerError, match=rf"asks to load '{named}', which is code.*nothing was run"):
        load_head_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("call", [
    (copyreg._reconstructor, (np.ndarray, np.ndarray, (3,))),  # only chumpy/scipy stand-ins on object
    (codecs.encode, ("text", "rot13")),                          # only latin-1, as pickles use it
])
def test_allowed_helpers_refuse_arguments_beyond_rebuilding_arrays(tmp_path, call):
    write_python2_pickle({"v_template": RunsCommand(call)}, tmp_path / "odd.pkl")
    with pytest.raises(JokerError, match=r"not a readable pickle"):
        load_head_model(tmp_path / "odd.pkl")


def test_a_pickle_of_something_other_than_a_flame_dict_is_refused(tmp_path):
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(JokerError, match=r"holds a pickled list, not a FLAME model"):
        load_head_model(tmp_path / "list.pkl")
    partial = {key: value for key, value in official_layout_dict(MODEL).items() if key not in ("posedirs", "f")}
    write_python2_pickle(partial, tmp_path / "partial.pkl")
    with pytest.raises(JokerError, match=r"not a FLAME model: it lacks posedirs, f"):
        load_head_model(tmp_path / "partial.pkl")


def test_a_flame_dict_with_a_wrongly_shaped_field_names_the_field(tmp_path):
    layout = official_layout_dict(MODEL)
    layout["weights"] = np.ones((MODEL.n_vertices, 4)) / 4
    write_python2_pickle(layout, tmp_path / "bad.pkl")
    with pytest.raises(JokerError, match=rf"'weights' has shape \({MODEL.n_vertices}, 4\), expected {MODEL.n_vertices} x 5"):
        load_head_model(tmp_path / "bad.pkl")


def test_truncated_files_are_refused(tmp_path):
    write_official_layout_pkl(tmp_path / "full.pkl", MODEL)
    save_head_model(MODEL, tmp_path / "full.npz")
    for name in ("full.pkl", "full.npz"):
        data = (tmp_path / name).read_bytes()
        cut = tmp_path / f"cut{Path(name).suffix}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(JokerError, match=r"truncated or damaged"):
            load_head_model(cut)


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "head.obj").write_text("v 0 0 0\n")
    with pytest.raises(JokerError, match=r"extension '.obj'.*Fix: pass an official FLAME"):
        load_head_model(tmp_path / "head.obj")
    with pytest.raises(JokerError, match=r"does not exist"):
        load_head_model(tmp_path / "nowhere.pkl")


def test_npz_round_trips_every_field_including_extras(tmp_path):
    model = dataclasses.replace(
        MODEL, n_shape=297, n_expr=103, is_demo=True, name="round-trip head",
        expression_names=tuple(f"expr_{i}" for i in range(103)),
        metadata={"licence": "GPL-3.0-or-later", "labels": ["demo", "not FLAME"], "scale": 1.5})
    written = save_head_model(model, tmp_path / "head.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["head.npz"]  # no temporary file left behind
    loaded = load_head_model(written)
    for field in dataclasses.fields(model):
        original, again = getattr(model, field.name), getattr(loaded, field.name)
        if isinstance(original, np.ndarray):
            assert again.dtype == original.dtype and np.array_equal(again, original), field.name
        else:
            assert again == original, field.name
    with np.load(written, allow_pickle=False) as archive:  # plain arrays only
        assert all(archive[name].dtype != object for name in archive.files)


def test_npz_without_extras_round_trips_them_as_absent(tmp_path):
    bare = dataclasses.replace(MODEL, uv_coords=None, uv_faces=None, face_region=None, landmarks={}, metadata={})
    loaded = load_head_model(save_head_model(bare, tmp_path / "bare.npz"))
    assert loaded.uv_coords is None and loaded.uv_faces is None and loaded.face_region is None
    assert loaded.landmarks == {} and loaded.metadata == {} and loaded.expression_names == ()


def test_saving_refuses_unserialisable_metadata_and_a_wrong_extension(tmp_path):
    with pytest.raises(JokerError, match="metadata cannot be written as JSON"):
        save_head_model(dataclasses.replace(MODEL, metadata={"when": object()}), tmp_path / "x.npz")
    with pytest.raises(JokerError, match=r"\.npz extension"):
        save_head_model(MODEL, tmp_path / "x.pkl")
    assert list(tmp_path.iterdir()) == []


def test_an_npz_that_is_not_a_head_model_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(JokerError, match=r"is an .npz file but not a joker-head-model/1 head model"):
        load_head_model(tmp_path / "other.npz")
