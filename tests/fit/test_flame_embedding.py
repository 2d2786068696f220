"""FLAME's landmark embedding files, read as data (joker_core.legacy_pickle), never run:
`flame_static_embedding.pkl` (a Python 2 pickle) and DECA's `landmark_embedding.npy` (an
object array). Built here in their formats on the small FLAME-layout test head."""

import os

import numpy as np
import pytest

from flame_fixtures import RunsCommand, make_small_head_model, write_python2_pickle
from joker.fit.embedding import STATIC_FLAME, read_flame_embedding
from joker.fit.landmarks import Landmarks
from joker.fit.solve import FitSettings, fit_landmarks
from joker_core.cameras import Camera, look_at
from joker_core.errors import JokerError

HEAD = make_small_head_model(n_shape=10, n_expr=5)


def _front_embedding(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """51 triangles on the head's front and barycentric weights on them."""
    rng = np.random.default_rng(seed)
    centroids = HEAD.v_template[HEAD.faces].mean(1)
    front = np.flatnonzero(centroids[:, 2] > 0.5 * centroids[:, 2].max())
    return rng.choice(front, len(STATIC_FLAME), replace=False), rng.dirichlet(np.ones(3), len(STATIC_FLAME))


def write_static_pkl(path, faces, barycentric, **extra):
    write_python2_pickle({"lmk_face_idx": faces.astype(np.uint32), "lmk_b_coords": barycentric, **extra}, path)


def write_deca_npy(path, faces, barycentric, **extra):
    content = {"static_lmk_faces_idx": faces.astype(np.int64), "static_lmk_bary_coords": barycentric,
               "dynamic_lmk_faces_idx": np.zeros((79, 17), np.int64),
               "dynamic_lmk_bary_coords": np.full((79, 17, 3), 1 / 3), **extra}
    np.save(path, np.array(content, dtype=object), allow_pickle=True)


def test_both_files_give_the_same_embedding_on_the_right_triangles(tmp_path):
    faces, barycentric = _front_embedding()
    write_static_pkl(tmp_path / "flame_static_embedding.pkl", faces, barycentric)
    write_deca_npy(tmp_path / "landmark_embedding.npy", faces, barycentric)
    for name in ("flame_static_embedding.pkl", "landmark_embedding.npy"):
        embedding = read_flame_embedding(tmp_path / name, HEAD)
        assert list(embedding.indices) == list(range(17, 68)) and np.array_equal(embedding.faces, faces)
        expected = (HEAD.v_template[HEAD.faces[faces]] * barycentric[..., None]).sum(1)
        assert np.allclose(embedding.points(HEAD.v_template, HEAD.faces), expected)


def test_a_flame_model_fits_through_its_embedding_file(tmp_path):
    """Landmarks projected through a known camera: the fit finds them again (< 0.5 px)."""
    faces, barycentric = _front_embedding()
    path = tmp_path / "flame_static_embedding.pkl"
    write_static_pkl(path, faces, barycentric)
    points = (HEAD.v_template[HEAD.faces[faces]] * barycentric[..., None]).sum(1)
    camera = Camera.from_fov(look_at(np.array([0.05, 0.02, 0.6]), np.zeros(3)), 25.0, 512, 512)
    pixels, _ = camera.project(points)
    landmarks = Landmarks(pixels, STATIC_FLAME.copy(), np.array([150.0, 150.0, 200.0, 200.0]), "68")
    fit = fit_landmarks(landmarks, HEAD, 512, 512, FitSettings(embedding_path=str(path)), check=False)
    assert fit.residual_px < 0.5
    assert np.linalg.norm(fit.camera.c2w[:3, 3] - camera.c2w[:3, 3]) < 0.05  # metres, at 0.6 m


def test_flames_dynamic_contour_file_is_refused_naming_the_static_one(tmp_path):
    path = tmp_path / "flame_dynamic_embedding.npy"  # per yaw bin, the 17 jaw-contour points
    np.save(path, np.array({"lmk_face_idx": np.zeros((79, 17), np.int64),
                            "lmk_b_coords": np.full((79, 17, 3), 1 / 3)}, dtype=object), allow_pickle=True)
    with pytest.raises(JokerError, match=r"embeds 1343 landmarks.*flame_static_embedding.pkl"):
        read_flame_embedding(path, HEAD)


@pytest.mark.parametrize("write", [write_static_pkl, write_deca_npy])
def test_an_embedding_file_that_would_run_code_runs_nothing(tmp_path, write):
    marker = tmp_path / "ran"
    faces, barycentric = _front_embedding()
    path = tmp_path / ("evil.pkl" if write is write_static_pkl else "evil.npy")
    write(path, faces, barycentric, note=RunsCommand((os.system, (f"touch {marker}",))))
    with pytest.raises(JokerError, match="which is code.*nothing was run"):
        read_flame_embedding(path, HEAD)
    assert not marker.exists()


def test_malformed_files_get_one_line_errors(tmp_path):
    faces, barycentric = _front_embedding()
    write_static_pkl(tmp_path / "other_model.pkl", faces + len(HEAD.faces), barycentric)
    np.save(tmp_path / "plain.npy", np.zeros((51, 3)))
    write_python2_pickle({"v_template": np.zeros((3, 3))}, tmp_path / "not_embedding.pkl")
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    for name, problem in (("other_model.pkl", "outside the model"), ("plain.npy", "plain array"),
                          ("not_embedding.pkl", "no static landmark embedding"), ("broken.npy", "not a .npy"),
                          ("missing.pkl", "does not exist")):
        with pytest.raises(JokerError, match=problem):
            read_flame_embedding(tmp_path / name, HEAD)
