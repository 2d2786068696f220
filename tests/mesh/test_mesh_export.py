"""Exported files, read back by real loaders: trimesh for GLB and OBJ/MTL/PNG."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from analytic_fields import HEAD_BOX, NOSE_TIP, HeadLikeField
from texture_lookup import sample_texture
from joker.mesh.export import UNLIT, write_glb, write_mesh_files
from joker_core.errors import JokerError

from .conftest import mesh_head_files
from .support import SMALL


def load_single_mesh(path) -> trimesh.Trimesh:
    scene = trimesh.load(path, force="scene", process=False)
    (mesh,) = scene.geometry.values()
    return mesh


def colour_error_at_face_centres(mesh: trimesh.Trimesh, texture: np.ndarray) -> np.ndarray:
    uvs = mesh.visual.uv[mesh.faces].mean(axis=1)
    points = mesh.vertices[mesh.faces].mean(axis=1)
    expected = HeadLikeField.color(torch.from_numpy(points)).numpy()
    return np.abs(sample_texture(texture, uvs) / 255.0 - expected)


def test_only_the_four_result_files_are_written(head_files):
    assert sorted(p.name for p in head_files.glb.parent.iterdir()) == ["head.glb", "head.mtl", "head.obj", "head.png"]


def test_glb_loads_with_texture_and_keeps_flame_coordinates(head_files):
    mesh = load_single_mesh(head_files.glb)
    assert len(mesh.faces) == head_files.stats.faces <= SMALL.face_budget
    assert len(mesh.vertices) == head_files.stats.vertices
    texture = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    assert texture.shape == (SMALL.texture_size, SMALL.texture_size, 3)
    assert mesh.visual.uv.min() >= 0 and mesh.visual.uv.max() <= 1
    slack = 1e-3  # decimation may place a vertex a hair outside the sampled box
    assert np.all(mesh.bounds[0] >= HEAD_BOX.minimum - slack) and np.all(mesh.bounds[1] <= HEAD_BOX.maximum + slack)
    nose = mesh.vertices[mesh.vertices[:, 2].argmax()]
    np.testing.assert_allclose(nose, NOSE_TIP, atol=0.01)
    assert mesh.volume > 0  # outward winding survives the round trip


def test_glb_texture_reads_back_the_field_colours(head_files):
    mesh = load_single_mesh(head_files.glb)
    error = colour_error_at_face_centres(mesh, np.asarray(mesh.visual.material.baseColorTexture.convert("RGB")))
    assert np.median(error) < 0.01
    assert np.percentile(error, 99) < 0.05


def test_obj_mtl_png_triple_loads_with_the_same_texture(head_files):
    mesh = load_single_mesh(head_files.obj)
    assert "map_Kd head.png" in head_files.mtl.read_text()
    texture = np.asarray(mesh.visual.material.image.convert("RGB"))
    np.testing.assert_array_equal(texture, np.asarray(Image.open(head_files.texture)))
    assert len(mesh.faces) == head_files.stats.faces
    error = colour_error_at_face_centres(mesh, texture)
    assert np.median(error) < 0.01


def test_stats_describe_the_result(head_files):
    stats = head_files.stats.as_dict()
    assert stats["watertight"] and stats["volume_m3"] > 0
    assert stats["marching_cubes_faces"] > stats["faces"] // 2
    stages = {"density grid", "marching cubes", "cleanup", "unwrap", "bake", "smooth", "glb", "obj"}
    assert set(stats["seconds"]) == set(stats["cpu_seconds"]) == stages


def test_export_is_deterministic(head_files, tmp_path):
    again = mesh_head_files(tmp_path)
    for first, second in [(head_files.glb, again.glb), (head_files.obj, again.obj), (head_files.texture, again.texture)]:
        assert first.read_bytes() == second.read_bytes(), first.name


def test_unwritable_output_folder_is_refused_and_nothing_is_left(head_files, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(JokerError, match="Fix: choose an output path"):
        write_mesh_files(head_files.mesh, blocker / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_folder"]


@pytest.mark.parametrize("name", ["../head", "", "head.glb", "my head"])
def test_unsafe_file_names_are_refused(name, head_files, tmp_path):
    with pytest.raises(JokerError, match="not a plain file name"):
        write_mesh_files(head_files.mesh, tmp_path, name)


def test_unlit_glb_marks_its_material_and_still_loads(head_files, tmp_path):
    path = write_glb(head_files.mesh, tmp_path / "head.glb", unlit=True)
    tree = json.loads(path.read_bytes()[20:20 + int.from_bytes(path.read_bytes()[12:16], "little")])
    assert tree["extensionsUsed"] == [UNLIT] and tree["materials"][0]["extensions"] == {UNLIT: {}}
    assert "KHR_materials_unlit" not in head_files.glb.read_bytes().decode("latin-1")  # lit by default
    mesh = load_single_mesh(path)
    assert mesh.visual.material.baseColorTexture.size == (SMALL.texture_size, SMALL.texture_size)
