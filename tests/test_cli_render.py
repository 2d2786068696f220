"""`joker render-normals`, `joker info` and `joker demo`, run in-process on real files."""

import json

import numpy as np
import pytest
from PIL import Image

from flame_fixtures import write_official_layout_pkl
from joker.cli import main
from joker_core.cameras import Camera
from joker_core.conventions import decode_normals
from joker_core.demo_head import load_demo_head


def _render(tmp_path, *extra, out="out"):
    return main(["render-normals", "--size", "32", "--views", "grid:2x2", "--out", str(tmp_path / out), *extra])


def _png(path):
    return np.asarray(Image.open(path))


def test_render_normals_writes_views_masks_and_cameras_that_belong_together(tmp_path):
    assert _render(tmp_path, "--preset", "scream", "--views", "grid:3x2", "--elevation-range", "15") == 0
    out = tmp_path / "out"
    description = json.loads((out / "cameras.json").read_text())
    assert description["model"] == "Joker demo head" and description["preset"] == "scream"
    assert description["params"]["jaw_pose"][0] > 0.3  # the scream opens the jaw
    views = description["views"]
    assert len(views) == 6
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["cameras.json"] + [v["image"] for v in views] + [v["mask"] for v in views])
    assert sorted({round(v["azimuth"], 6) for v in views}) == [-45.0, 0.0, 45.0]
    assert sorted({round(v["elevation"], 6) for v in views}) == [-15.0, 15.0]
    rig = description["rig"]
    for view in views:
        camera = Camera.from_dict(view["camera"])
        assert (camera.width, camera.height) == (32, 32)
        # The camera stands where its azimuth and elevation say, looking at the rig centre.
        az, el = np.radians(view["azimuth"]), np.radians(view["elevation"])
        direction = [np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)]
        assert np.allclose(camera.c2w[:3, 3], np.add(rig["center"], np.multiply(rig["distance"], direction)))
        rgb, mask = _png(out / view["image"]), _png(out / view["mask"])
        assert rgb.shape == (32, 32, 3) and mask.shape == (32, 32)
        _, foreground = decode_normals(rgb)
        assert np.array_equal(foreground, mask == 255) and foreground.mean() > 0.1


def test_face_mode_on_an_official_layout_flame_file_uses_the_heuristic_region(tmp_path):
    model_file = tmp_path / "flame.pkl"
    write_official_layout_pkl(model_file)  # FLAME files carry no face region
    for mode in ("full", "face"):
        assert _render(tmp_path, str(model_file), "--views", "orbit:4", "--jaw", "20", "--mode", mode,
                       out=mode) == 0
    for view, most in (("000", 0.95), ("001", 0.5)):  # from the front; from the side (azimuth 90)
        full, face = (_png(tmp_path / mode / f"mask_{view}.png") > 0 for mode in ("full", "face"))
        assert 0 < face.sum() < most * full.sum()
        assert not (face & ~full).any()
    params = json.loads((tmp_path / "face" / "cameras.json").read_text())["params"]
    assert params["jaw_pose"] == pytest.approx([np.radians(20), 0, 0])


def test_params_file_and_named_expressions_reach_the_rig(tmp_path):
    params_file = tmp_path / "pose.json"
    params_file.write_text(json.dumps({"neck_pose": [0.1, 0.2, 0.0], "expression": [0.5]}))
    assert _render(tmp_path, "--params", str(params_file), "--expression", "smile=0.8,blink_left=1") == 0
    params = json.loads((tmp_path / "out" / "cameras.json").read_text())["params"]
    assert params["neck_pose"] == [0.1, 0.2, 0.0]
    names = load_demo_head().expression_names
    assert params["expression"][names.index("smile")] == 0.8
    assert params["expression"][names.index("blink_left")] == 1.0
    assert sum(params["expression"]) == pytest.approx(1.8)  # the file's [0.5] was replaced


@pytest.mark.parametrize("arguments, message", [
    (["--preset", "grin-of-doom"], "unknown expression preset"),
    (["--expression", "1,nan"], "NaN"),
    (["--expression", ",".join(["0.1"] * (load_demo_head().n_expr + 1))], "at most"),
    (["--expression", "smirk=1"], "unknown expression name"),
    (["--jaw", "400"], "jaw angle"),
    (["--views", "spiral:3"], "view set"),
    (["--views", "grid:200x200"], "views"),
    (["--size", "3"], "image size"),
    (["--azimuth-range", "nan"], "azimuth range"),
])
def test_bad_arguments_get_one_line_with_the_fix_and_write_nothing(tmp_path, capsys, arguments, message):
    assert _render(tmp_path, *arguments) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("joker render-normals: error: ") and "Fix: " in error
    assert message in error and "\n" not in error
    assert list(tmp_path.iterdir()) == []


def test_bad_files_are_refused_without_a_traceback(tmp_path, capsys):
    evil = tmp_path / "model.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo owned'\ntR.")  # a pickle that would call os.system
    params = tmp_path / "params.json"
    params.write_text('{"jaw_pose": [0.1, 0.2')  # truncated JSON
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cases = [([str(evil)], "model.pkl"), (["--params", str(params)], "not valid JSON"),
             (["--params", str(tmp_path / "missing.json")], "cannot read")]
    for arguments, message in cases:
        assert _render(tmp_path, *arguments) == 2
        error = capsys.readouterr().err
        assert message in error and "Fix: " in error and "Traceback" not in error
    assert main(["render-normals", "--size", "32", "--out", str(blocker / "out")]) == 2
    assert "Fix: " in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "model.pkl", "params.json"]


def test_existing_output_is_kept_unless_overwrite_is_asked_for(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert _render(tmp_path) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["precious.txt"]
    assert _render(tmp_path, "--overwrite") == 0
    assert not (out / "precious.txt").exists() and (out / "cameras.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind


def test_info_describes_the_demo_head_and_the_engine(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    for expected in ("Joker demo head", "vertices:", "expression names:", "smile", "UV coordinates:        yes",
                     "scream", "torch:", "devices:", "cpu"):
        assert expected in text, expected


def test_info_on_a_flame_file_says_its_components_have_no_names(tmp_path, capsys):
    model_file = tmp_path / "flame.pkl"
    model = write_official_layout_pkl(model_file)
    assert main(["info", str(model_file)]) == 0
    text = capsys.readouterr().out
    assert f"vertices:              {model.n_vertices}" in text
    assert "none (unnamed PCA components)" in text and "heuristic" in text


def test_contact_sheet_puts_the_highest_views_on_top(tmp_path, capsys):
    out = tmp_path / "sheet"
    assert main(["render-normals", "--preset", "scream", "--views", "grid:3x3", "--size", "32",
                 "--contact-sheet", "3", "--out", str(out)]) == 0
    description = json.loads((out / "cameras.json").read_text())
    assert description["preset"] == "scream" and len(description["views"]) == 9
    sheet = _png(out / "contact_sheet.png")
    assert sheet.shape == (96, 96, 3)
    # Highest views on top: the sheet's top-left tile is the view at (-45, +20).
    top_left = next(v for v in description["views"] if v["azimuth"] < -44 and v["elevation"] > 19)
    assert np.array_equal(sheet[:32, :32], _png(out / top_left["image"]))


def test_demo_never_replaces_a_folder_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["demo", "--out", str(out)]) == 2
    assert "not an earlier demo" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep me"


def test_view_sets_name_their_cameras_azimuth_and_elevation():
    from joker_core.cameras import ViewRig
    from joker.render.view_sets import view_set

    rig = ViewRig(center=(0.0, 0.1, 0.0), distance=0.7, fov_deg=30.0, size=16)
    orbit = view_set(rig, "orbit:4")
    assert [round(v.azimuth) for v in orbit] == [0, 90, 180, -90] and {v.elevation for v in orbit} == {0.0}
    shuffled = view_set(rig, "random:20", azimuth_range=30, elevation_range=10, seed=3)
    assert all(abs(v.azimuth) <= 30 and abs(v.elevation) <= 10 for v in shuffled)
    assert [v.azimuth for v in shuffled] == [v.azimuth for v in view_set(rig, "random:20", 30, 10, seed=3)]
    assert [v.azimuth for v in shuffled] != [v.azimuth for v in view_set(rig, "random:20", 30, 10, seed=4)]
    for view in orbit + shuffled:  # every camera looks at the centre from the rig distance
        pixels, depth = view.camera.project(np.array([rig.center]))
        assert np.allclose(pixels, 8.0) and depth[0] == pytest.approx(0.7)
