"""Reference panel (photo, alignment check) and Views panel (show/hide cameras) in real Blender."""

import numpy as np
import pytest
from PIL import Image

from blender_runner import ENABLE_ADDON, REPORT, run_blender
from joker_core.demo_head import load_demo_head
from joker_core.framing import head_view_rig

pytestmark = pytest.mark.blender

PANELS = REPORT + ENABLE_ADDON + """
import json
import numpy as np
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector
from joker_core.cameras import Camera
photo, broken = sys.argv[-2:]
scene = bpy.context.scene
out = {}

bpy.ops.joker.add_head(use_demo=True)
armature = bpy.context.active_object
out["broken"] = attempt(bpy.ops.joker.load_reference, filepath=broken)
out["images_after_broken"] = len(bpy.data.images)
out["load"] = attempt(bpy.ops.joker.load_reference, filepath=photo)
out["reference_path"] = scene.joker.reference_path
out["images"] = [(i.name, list(i.size)) for i in bpy.data.images]

armature.location = (0.2, -0.1, 0.05)  # a moved rig: the check must follow it
out["alignment"] = attempt(bpy.ops.joker.alignment_check)
camera = scene.camera
backgrounds = camera.data.background_images
out["camera"] = {"name": camera.name, "shown": camera.data.show_background_images,
                 "backgrounds": [b.image.name for b in backgrounds],
                 "resolution": [scene.render.resolution_x, scene.render.resolution_y]}
bpy.context.view_layer.update()
points = np.array(json.loads(sys.argv[-3]))
rig = np.array(armature.matrix_world)
world = points @ rig[:3, :3].T + rig[:3, 3]
out["projected"] = [list(world_to_camera_view(scene, camera, Vector(p)))[:2] for p in world]

scene.joker.views_azimuth, scene.joker.views_elevation = 3, 2
out["show"] = attempt(bpy.ops.joker.show_cameras)
out["show_again"] = attempt(bpy.ops.joker.show_cameras)
views = bpy.data.collections["Joker Views"]
out["view_positions"] = [list(o.matrix_world.translation) for o in sorted(views.objects, key=lambda o: o.name)]
out["rig_matrix"] = [list(row) for row in armature.matrix_world]
cameras_before_hide = len(bpy.data.cameras)
out["hide"] = attempt(bpy.ops.joker.show_cameras, show=False)
out["after_hide"] = {"collection": "Joker Views" in bpy.data.collections,
                     "cameras_removed": cameras_before_hide - len(bpy.data.cameras)}
report(**out)
"""


@pytest.fixture(scope="module")
def panels(tmp_path_factory):
    import json
    folder = tmp_path_factory.mktemp("panels")
    photo, broken = folder / "portrait.png", folder / "broken.jpg"
    Image.new("RGB", (300, 200), (180, 140, 120)).save(photo)
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is a truncated JPEG")
    model = load_demo_head()
    points = model.v_template[::500]
    out = run_blender(PANELS, folder, json.dumps(points.tolist()), str(photo), str(broken))
    return out, photo, broken, model, points


def test_reference_photo_loads_as_an_image_and_a_broken_one_is_reported(panels):
    out, photo, broken, *_ = panels
    status, message = out["broken"]
    assert status == ["ERROR"] and broken.name in message and "Fix: save the photo as JPEG or PNG" in message
    assert out["images_after_broken"] == 0  # nothing half-loaded
    assert out["load"] == [["FINISHED"], ""]
    assert out["reference_path"] == str(photo)
    assert out["images"] == [[photo.name, [300, 200]]]


def test_alignment_check_sees_the_rig_as_the_engines_front_camera_with_the_photo_behind(panels):
    out, photo, _, model, points = panels
    assert out["alignment"] == [["FINISHED"], ""]
    camera = out["camera"]
    assert camera["name"] == "Joker Alignment" and camera["shown"] and camera["backgrounds"] == [photo.name]
    assert camera["resolution"] == [512, 512]
    front = head_view_rig(model, size=512).camera(0.0, 0.0)
    pixels, _ = front.project(points)
    blender = np.array(out["projected"])  # normalised, origin bottom-left
    expected = np.stack([pixels[:, 0] / 512, 1.0 - pixels[:, 1] / 512], axis=1)
    assert np.abs(blender - expected).max() < 1e-4  # the rig was moved: the camera moved with it
    assert np.ptp(expected[:, 0]) > 0.2  # the points really spread over the image


def test_view_cameras_show_the_view_grid_around_the_rig_and_are_removed_without_leftovers(panels):
    out, _, _, model, _ = panels
    assert out["show"] == [["FINISHED"], ""] and out["show_again"] == [["FINISHED"], ""]
    cameras = head_view_rig(model, size=256).grid(3, 2, 45.0, 20.0)
    rig = np.array(out["rig_matrix"])
    expected = [rig[:3, :3] @ c.c2w[:3, 3] + rig[:3, 3] for c in cameras]
    assert np.allclose(out["view_positions"], expected, atol=1e-5)  # 6, not 12: shown twice, made once
    assert out["hide"] == [["FINISHED"], ""]
    assert out["after_hide"] == {"collection": False, "cameras_removed": 6}
