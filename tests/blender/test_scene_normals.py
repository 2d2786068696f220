"""In-scene normal maps rendered by real Blender agree with the conventions."""

import numpy as np
import pytest

from blender_runner import REPORT, run_blender
from joker_core.cameras import ViewRig
from joker_core.conventions import decode_normals

pytestmark = pytest.mark.blender

RADIUS = 0.1
RIG = ViewRig(center=(0.0, 0.0, 0.0), distance=0.5, fov_deg=30.0, size=64)
VIEWS = [(0.0, 0.0), (35.0, 15.0), (-40.0, -10.0)]

RENDER_SPHERE = REPORT + """
import sys, json
sys.path.insert(0, sys.argv[-2])
import bpy
from mathutils import Matrix
from joker_core.cameras import Camera
from joker_core.conventions import FLAME_TO_BLENDER
from joker_blender.scene_normals import render_normal_maps
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.mesh.primitive_uv_sphere_add(radius=%r, segments=128, ring_count=64)
sphere = bpy.context.active_object
bpy.ops.object.shade_smooth()
sphere.matrix_world = Matrix(FLAME_TO_BLENDER.tolist())
bpy.ops.mesh.primitive_cube_add(size=0.05, location=(0, -0.3, 0))  # an occluder that must be ignored
cameras = [Camera.from_dict(c) for c in json.loads(open(sys.argv[-1]).read())]
scene = bpy.context.scene
engine_before = scene.render.engine
maps = render_normal_maps(scene, sphere, cameras)
report(rgb=[m.rgb.tolist() for m in maps], mask=[m.mask.tolist() for m in maps],
       engine_restored=scene.render.engine == engine_before)
""" % RADIUS


def _analytic_sphere(camera):
    """Camera-space unit normals and mask of the sphere at the origin, at pixel centres."""
    v, u = np.mgrid[0:camera.height, 0:camera.width] + 0.5
    dirs_cam = np.stack([(u - camera.cx) / camera.fx, -(v - camera.cy) / camera.fy, -np.ones_like(u)], -1)
    rot, origin = camera.c2w[:3, :3], camera.c2w[:3, 3]
    dirs = dirs_cam @ rot.T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    b = dirs @ origin
    disc = b ** 2 - (origin @ origin - RADIUS ** 2)
    hit = disc > 0
    t = -b - np.sqrt(np.where(hit, disc, 0.0))
    normals_world = (origin + t[..., None] * dirs) / RADIUS
    return normals_world @ rot, hit


def test_blender_normal_maps_match_the_analytic_sphere(tmp_path):
    import json
    cameras = [RIG.camera(a, e) for a, e in VIEWS]
    cams_file = tmp_path / "cams.json"
    cams_file.write_text(json.dumps([c.to_dict() for c in cameras]))
    import joker.packaging.extension as ext
    out = run_blender(RENDER_SPHERE, tmp_path, str(ext.REPO_ROOT), str(cams_file))
    assert out["engine_restored"]
    for camera, rgb, mask in zip(cameras, out["rgb"], out["mask"]):
        rgb, mask = np.array(rgb, dtype=np.uint8), np.array(mask)
        expected_normals, expected_mask = _analytic_sphere(camera)
        iou = (mask & expected_mask).sum() / (mask | expected_mask).sum()
        assert iou > 0.97
        assert (rgb[~mask] == 0).all()  # background encodes as black
        normals, _ = decode_normals(rgb)
        interior = mask & expected_mask & (np.abs(expected_normals[..., 2]) > 0.3)
        cos = (normals[interior] * expected_normals[interior]).sum(-1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).mean() < 2.0
        assert expected_normals[interior][:, 2].min() > 0  # visible normals face the camera (+z)
