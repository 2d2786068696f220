"""The open demo head: closed and outward, head-shaped, rigged, expressive, labelled, cached."""

import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import fields

import numpy as np
import pytest

from joker_core.demo_head import build_demo_head, cache_path, load_demo_head
from joker_core.demo_head.anatomy import EYE_RADIUS
from joker_core.demo_head.sculpt import head_closed_eyes
from joker_core.lbs import numpy_rig, pose
from joker_core.rig_params import RigParams

REQUIRED_EXPRESSIONS = ("smile", "frown", "brow_raise", "brow_furrow", "blink_left", "blink_right", "cheek_puff",
                        "lip_pucker", "mouth_stretch", "nose_wrinkle", "lip_funnel", "lower_lip_down")


@pytest.fixture(scope="module")
def head():
    return build_demo_head()


def part(head, name, kind="vertex"):
    start, stop = head.metadata[f"{kind}_parts"][name]
    return np.arange(start, stop)


def closed_parts(head):
    """Face-id sets of the closed pieces: skin sealed by the mouth pouch, each eyeball, the tongue."""
    return {"skin+pouch": np.concatenate([part(head, "skin", "face"), part(head, "pouch", "face")]),
            **{name: part(head, name, "face") for name in ("eyeball_left", "eyeball_right", "tongue")}}


def signed_volume(vertices, faces):
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6


def posed(head, expression=None, jaw=0.0, shape=None, eye_left=(0.0, 0.0, 0.0)):
    expr = np.zeros(head.n_expr)
    for name, weight in (expression or {}).items():
        expr[head.expression_names.index(name)] = weight
    params = RigParams(shape=np.zeros(head.n_shape) if shape is None else shape, expression=expr,
                       jaw_pose=(jaw, 0.0, 0.0), eye_left_pose=eye_left)
    return pose(numpy_rig(head), params)


def expression_offsets(head, name):
    return head.shapedirs[:, :, head.n_shape + head.expression_names.index(name)]


def moved(offsets, tolerance=1e-6):
    return np.linalg.norm(offsets, axis=1) > tolerance


def test_every_part_is_watertight_and_consistently_wound_outward(head):
    for name, face_ids in closed_parts(head).items():
        faces = head.faces[face_ids]
        directed = Counter(map(tuple, np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).tolist()))
        assert max(directed.values()) == 1, f"{name}: an edge is traversed twice the same way"
        assert all((b, a) in directed for a, b in directed), f"{name}: an edge has only one face"
        assert signed_volume(head.v_template, faces) > 0, f"{name}: normals point inward"
    assert sum(len(ids) for ids in closed_parts(head).values()) == len(head.faces)


def test_a_head_of_flame_like_density_size_and_placement(head):
    skin = head.v_template[part(head, "skin")]
    lm = head.landmarks
    assert 4000 <= head.n_vertices <= 8000
    assert 0.20 < skin[:, 1].max() - head.v_template[lm["chin"], 1] < 0.26   # crown to chin
    assert 0.13 < np.ptp(skin[:, 0]) < 0.19                                     # ear to ear
    assert np.allclose(skin.min(0)[[0, 2]] + skin.max(0)[[0, 2]], 0, atol=0.04)  # centred in x and z
    nose = head.v_template[lm["nose_tip"]]
    assert nose[2] == pytest.approx(skin[:, 2].max()) and abs(nose[0]) < 1e-9   # face looks along +z
    assert head.v_template[lm["chin"], 1] < head.v_template[lm["lower_lip"], 1] < nose[1]
    mirrored = skin * (-1, 1, 1)
    assert np.abs(np.sort(mirrored[:, 0]) - np.sort(skin[:, 0])).max() < 1e-9      # left-right symmetric


def test_eyeballs_are_spheres_on_the_eye_joints_and_turn_with_them(head):
    joints = head.J_regressor @ head.v_template
    for joint, name in ((3, "eyeball_left"), (4, "eyeball_right")):
        ids = part(head, name)
        assert np.allclose(np.linalg.norm(head.v_template[ids] - joints[joint], axis=1), EYE_RADIUS)
        assert np.array_equal(head.weights[ids], np.tile(np.eye(5)[joint], (len(ids), 1)))
    assert joints[3, 0] > 0 > joints[4, 0]  # FLAME: the left eye is at +x
    look_down = posed(head, eye_left=(0.3, 0.0, 0.0))
    front = head.landmarks["eye_left"]
    assert look_down.vertices[front, 1] < head.v_template[front, 1] - 0.003
    ids = part(head, "eyeball_left")
    assert np.allclose(np.linalg.norm(look_down.vertices[ids] - joints[3], axis=1), EYE_RADIUS)


def test_opening_the_jaw_parts_the_lips_and_shows_the_mouth_interior(head):
    lm = head.landmarks
    rest_gap = np.linalg.norm(head.v_template[lm["upper_lip"]] - head.v_template[lm["lower_lip"]])
    opened = posed(head, jaw=0.35).vertices
    gap = np.linalg.norm(opened[lm["upper_lip"]] - opened[lm["lower_lip"]])
    assert rest_gap < 1e-9 and gap > 0.02
    assert np.allclose(opened[lm["upper_lip"]], head.v_template[lm["upper_lip"]])  # the upper lip stays
    # The cavity fills the gap: pouch vertices lie between the parted lips, behind them.
    pouch = opened[part(head, "pouch")]
    between = (pouch[:, 1] < opened[lm["upper_lip"], 1]) & (pouch[:, 1] > opened[lm["lower_lip"], 1])
    assert between.sum() > 20 and (pouch[between, 2] < opened[lm["upper_lip"], 2]).all()
    interior = set(head.metadata["mouth_interior_parts"])
    assert interior == {"pouch", "tongue"}


def test_cavity_tongue_and_eyeballs_sit_inside_the_skin_at_rest(head):
    """Nothing pokes through the face: inside the sculpted skin (with the lids shut, which
    is where an eyeball's front would show through otherwise)."""
    for name in ("pouch", "tongue", "eyeball_left", "eyeball_right"):
        assert (head_closed_eyes(head.v_template[part(head, name)]) < 0).all(), name


def test_jaw_weights_are_smooth_on_the_cheeks_and_sharp_across_the_lips(head):
    jaw = head.weights[:, 2]
    lm = head.landmarks
    assert jaw[lm["upper_lip"]] == pytest.approx(0) and jaw[lm["lower_lip"]] == pytest.approx(1)
    assert jaw[lm["chin"]] > 0.95 and jaw[lm["nose_tip"]] < 0.05
    assert 0.4 < jaw[lm["mouth_left"]] < 0.6
    assert np.allclose(head.weights.sum(axis=1), 1.0)
    cheek = part(head, "skin")[(np.abs(head.v_template[part(head, "skin"), 0] - 0.05) < 0.004)
                               & (head.v_template[part(head, "skin"), 2] > 0.03)]
    partial = (jaw[cheek] > 0.1) & (jaw[cheek] < 0.9)
    assert partial.sum() >= 3  # a blend zone, not a cut


def test_all_required_expressions_exist_named_and_move_something(head):
    assert len(head.expression_names) >= 12 and set(REQUIRED_EXPRESSIONS) <= set(head.expression_names)
    for name in head.expression_names:
        assert np.linalg.norm(expression_offsets(head, name), axis=1).max() > 0.003, name


def test_expressions_never_move_the_eyeballs_and_only_tongue_out_moves_the_tongue(head):
    eyes = np.concatenate([part(head, "eyeball_left"), part(head, "eyeball_right")])
    tongue = part(head, "tongue")
    for name in head.expression_names:
        offsets = expression_offsets(head, name)
        assert not moved(offsets[eyes]).any(), name
        assert moved(offsets[tongue]).any() == (name == "tongue_out"), name
    assert not moved(np.delete(expression_offsets(head, "tongue_out"), tongue, axis=0)).any()


def test_blink_closes_only_its_own_eye_and_covers_the_eyeball(head):
    joints = head.J_regressor @ head.v_template
    for name, joint in (("blink_left", 3), ("blink_right", 4)):
        offsets = expression_offsets(head, name)
        ids = np.nonzero(moved(offsets))[0]
        assert len(ids) > 5
        assert (np.linalg.norm(head.v_template[ids] - joints[joint], axis=1) < 0.03).all(), name
        # Open: the skin of the opening hides inside the eyeball; shut: it lies outside, over it.
        def outside_eyeball(weight):
            return np.linalg.norm(head.v_template[ids] + weight * offsets[ids] - joints[joint], axis=1) > EYE_RADIUS

        assert not outside_eyeball(0.0).any() and outside_eyeball(1.0).all()
        # Half way, the lid has come down from the top: what covers the eye is its upper part.
        half = outside_eyeball(0.5)
        y = head.v_template[ids, 1]
        assert 0.2 < half.mean() < 0.8 and y[half].mean() > y[~half].mean() + 0.002


def test_eyes_wide_slides_the_openings_up_the_eyeballs_without_breaking_through(head):
    joints = head.J_regressor @ head.v_template
    offsets = expression_offsets(head, "eyes_wide")
    skin = part(head, "skin")
    for joint in (3, 4):
        opening = skin[np.linalg.norm(head.v_template[skin] - joints[joint], axis=1) < EYE_RADIUS]
        top = opening[head.v_template[opening, 1] > joints[joint, 1] + 0.003]
        assert len(top) and (offsets[top, 1] > 0.0005).all() and offsets[top, 1].mean() > 0.0015
        assert (np.linalg.norm(head.v_template[opening] + offsets[opening] - joints[joint], axis=1) < EYE_RADIUS).all()


def test_mouth_actions_move_the_mouth_corners_and_lips_the_right_way(head):
    lm = head.landmarks
    lift = {name: expression_offsets(head, name)[[lm["mouth_left"], lm["mouth_right"]], 1]
            for name in ("smile", "smile_left", "frown")}
    assert (lift["smile"] > 0.005).all() and (lift["frown"] < -0.004).all()
    assert lift["smile_left"][0] > 0.005 and abs(lift["smile_left"][1]) < 0.1 * lift["smile_left"][0]
    stretch = expression_offsets(head, "mouth_stretch")
    assert stretch[lm["mouth_left"], 0] > 0.006 and stretch[lm["mouth_right"], 0] < -0.006
    down = expression_offsets(head, "lower_lip_down")
    assert down[lm["lower_lip"], 1] < -0.004 and abs(down[lm["upper_lip"], 1]) < 1e-4
    assert expression_offsets(head, "lip_pucker")[lm["upper_lip"], 2] > 0.008
    brow = expression_offsets(head, "brow_raise")
    assert brow[lm["brow_left"], 1] > 0.005 and not moved(brow[[lm["chin"], lm["lower_lip"]]], 1e-4).any()


def test_identity_components_are_named_and_move_the_joints_they_should(head):
    names = head.metadata["identity_names"]
    assert len(names) == head.n_shape >= 10 and len(set(names)) == len(names)
    for index, name in enumerate(names):
        assert np.linalg.norm(head.shapedirs[:, :, index], axis=1).max() > 0.003, name
    rest = head.J_regressor @ head.v_template
    longer_face = np.zeros(head.n_shape)
    longer_face[names.index("face_length")] = 1.0
    assert posed(head, shape=longer_face).joints[2, 1] < rest[2, 1] - 0.001   # the jaw joint moves down
    wider_eyes = np.zeros(head.n_shape)
    wider_eyes[names.index("eye_spacing")] = 1.0
    shaped = posed(head, shape=wider_eyes)
    assert shaped.joints[3, 0] > rest[3, 0] + 0.003
    eyeball = part(head, "eyeball_left")
    assert np.allclose(np.linalg.norm(shaped.vertices[eyeball] - shaped.joints[3], axis=1), EYE_RADIUS)


def test_no_identity_pushes_skin_through_the_eyeballs(head):
    skin = part(head, "skin")
    for joint in (3, 4):
        centre = (head.J_regressor @ head.v_template)[joint]
        opening = skin[np.linalg.norm(head.v_template[skin] - centre, axis=1) < EYE_RADIUS]
        assert len(opening) > 5  # the skin of the eye's opening hides inside the eyeball
        for index in range(head.n_shape):
            for sign in (-1.0, 1.0):
                shaped = head.v_template + sign * head.shapedirs[:, :, index]
                moved_centre = (head.J_regressor @ shaped)[joint]
                assert (np.linalg.norm(shaped[opening] - moved_centre, axis=1) < EYE_RADIUS).all()


def test_uv_atlas_is_in_range_one_sided_and_even_on_the_face(head):
    uv, uv_faces = head.uv_coords, head.uv_faces
    assert uv.min() >= 0 and uv.max() <= 1 and uv_faces.shape == head.faces.shape
    corners = uv[uv_faces]
    uv_area = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]) / 2
    assert (uv_area > 0).all()  # no flipped or degenerate charts
    face = np.nonzero(head.face_region[head.faces].all(axis=1))[0]
    face = np.intersect1d(face, part(head, "skin", "face"))
    tri = head.v_template[head.faces[face]]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1) / 2
    low, high = np.percentile(uv_area[face] / area, [5, 95])
    assert high / low < 4  # texel density over the face varies by less than 4x


def test_face_region_keeps_the_face_and_drops_scalp_ears_and_neck(head):
    region, lm = head.face_region, head.landmarks
    for name in ("nose_tip", "eye_left", "eye_right", "mouth_left", "mouth_right", "chin", "brow_left"):
        assert region[lm[name]], name
    skin = head.v_template[part(head, "skin")]
    assert not region[lm["ear_left"]] and not region[lm["ear_right"]]
    assert not region[np.argmax(skin[:, 1])]                 # crown
    assert not region[part(head, "skin")[skin[:, 1] < -0.14]].any()  # neck
    assert 0.1 < region[part(head, "skin")].mean() < 0.4


def test_labelled_as_an_open_demo_head_not_flame(head):
    assert head.name == "Joker demo head" and head.is_demo
    assert "not FLAME" in head.metadata["provenance"] and "GPL" in head.metadata["licence"]
    assert head.posedirs.shape == (head.n_vertices, 3, 36)


def test_two_builds_are_identical(head):
    again = build_demo_head()
    for f in fields(head):
        a, b = getattr(head, f.name), getattr(again, f.name)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, f.name


@pytest.fixture()
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def test_cache_is_written_once_and_loads_the_same_head(cache_home, head):
    older = cache_home / "joker" / "demo_head-v0-0123456789ab.npz"
    older.parent.mkdir()
    older.write_bytes(b"a head from an older generator")
    first = load_demo_head()
    path = cache_path()
    assert path.is_file() and path.is_relative_to(cache_home)
    assert not older.exists()  # superseded heads do not pile up
    stamp = path.stat().st_mtime_ns
    second = load_demo_head()
    assert path.stat().st_mtime_ns == stamp  # read, not rebuilt
    assert np.array_equal(second.shapedirs, head.shapedirs) and second.landmarks == head.landmarks
    assert second.expression_names == first.expression_names == head.expression_names


@pytest.mark.parametrize("damage", ["truncate", "flip_a_byte"])
def test_a_damaged_cache_is_rebuilt_not_trusted(cache_home, head, damage):
    load_demo_head()
    path = cache_path()
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        offset = len(data) // 2  # inside an array: still a valid .npz, only the checksum notices
        data[offset] ^= 0x40
    path.write_bytes(bytes(data))
    rebuilt = load_demo_head()
    assert np.array_equal(rebuilt.v_template, head.v_template) and np.array_equal(rebuilt.shapedirs, head.shapedirs)
    assert path.read_bytes() != bytes(data)  # the damaged file was replaced


def test_builds_with_numpy_alone_as_inside_blender(tmp_path):
    """No torch, scipy, PIL or OpenCV: the add-on builds the head in Blender's Python."""
    script = textwrap.dedent("""
        import sys
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "scipy", "PIL", "cv2", "skimage"):
                    raise ImportError(f"{name} is not available in Blender")
        sys.meta_path.insert(0, Refuse())
        from joker_core.demo_head import load_demo_head
        from joker_core.presets import get_preset
        head = load_demo_head()
        print(head.n_vertices, get_preset("scream").params_for(head).jaw_pose[0])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={"XDG_CACHE_HOME": str(tmp_path), "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[1]) > 0.3
