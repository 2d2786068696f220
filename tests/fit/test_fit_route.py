"""POST /v1/fit on a real `joker serve` (loopback), and the add-on's *Fit Rig to Reference*
in real Blender against it: a synthetic photo of the demo head with a known shape and jaw.
`make test-slow`: a server, its first fit (dlib's models, the embedding) and Blender cost
~15 s of CPU, over the suite's budget; the request parsing is tested in the suite below."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from blender_runner import ENABLE_ADDON, REPORT, run_blender
from joker.fit.solve import fit_photo
from joker_core.client import InvalidRequest
from joker_core.demo_head import load_demo_head
from joker_core.rig_params import RigParams
from joker.service.config import ServiceConfig
from joker.service.fit_route import _parse_fit
from joker_core.errors import JokerError
from service.service_harness import Server

from .synthetic import synthetic_photo

SHAPE = {3: 0.5, 5: -0.4, 8: 0.4}
JAW = 0.2


@pytest.fixture(scope="module")
def truth():
    head = load_demo_head()
    shape = np.zeros(head.n_shape)
    shape[list(SHAPE)] = list(SHAPE.values())
    return synthetic_photo(head, RigParams(shape=shape, jaw_pose=[JAW, 0, 0]), azimuth=10)


@pytest.fixture(scope="module")
def photo(truth, tmp_path_factory):
    path = tmp_path_factory.mktemp("fit_photo") / "person.png"
    Image.fromarray(truth.image).save(path)
    return path


def _body(**fields) -> bytearray:
    return bytearray(json.dumps(fields).encode())


def _png(size: tuple[int, int]) -> bytes:
    data = io.BytesIO()
    Image.new("RGB", size, (90, 160, 220)).save(data, format="PNG")
    return data.getvalue()


def test_fit_requests_are_parsed_once_and_refused_in_one_line(tmp_path):
    config = ServiceConfig(data_dir=tmp_path)
    reference = base64.b64encode(_png((120, 90))).decode()
    image, model, settings = _parse_fit(_body(reference=reference, settings={"landmarks": "5", "fov_deg": 30}), config)
    assert image.shape == (90, 120, 3) and model is None and (settings.landmark_model, settings.fov_deg) == ("5", 30.0)
    for fields, field, problem in (({"reference": reference, "camera": {}}, "camera", "not a known field"),
                                   ({"reference": reference, "model": 3}, "model", "not a file path"),
                                   ({"reference": reference, "settings": []}, "settings", "not an object"),
                                   ({"reference": "@@"}, "reference", "not valid base64"),
                                   ({"reference": base64.b64encode(b"GIF89a").decode()}, "reference", "not an image")):
        with pytest.raises(JokerError, match=problem) as caught:
            _parse_fit(_body(**fields), config)
        assert caught.value.field == field
    with pytest.raises(JokerError, match="landmark model"):
        _parse_fit(_body(reference=reference, settings={"landmarks": "12"}), config)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("fit-server")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def answer(server, photo):
    return server.client(timeout=120).fit(photo)


@pytest.mark.slow  # `make test-slow`: over the suite's 5-minute budget on CI's 2 cores
def test_the_route_answers_the_engines_fit_and_names_what_is_wrong(server, photo, truth, answer):
    here = fit_photo(truth.image, load_demo_head())
    params = RigParams.from_dict(answer["fit"]["params"])
    assert answer["model"] == load_demo_head().name
    assert np.allclose(params.shape, here.params.shape, atol=1e-6) and answer["fit"]["residual_px"] == pytest.approx(here.residual_px)
    assert abs(params.jaw_pose[0] - JAW) < 0.1  # dlib on the stylised head, as in test_fit.py
    client = server.client(timeout=120)
    with pytest.raises(InvalidRequest, match="no face"):
        client.fit(_png((256, 256)))
    with pytest.raises(InvalidRequest, match="landmark model"):
        client.fit(photo, settings={"landmarks": "12"})


FIT_IN_BLENDER = REPORT + ENABLE_ADDON + """
import json
import numpy as np
from joker_blender import fit_ops, rig_state, rig_ops
args = json.loads(sys.argv[-1])
prefs = bpy.context.preferences.addons["joker_blender"].preferences
prefs.server_url, prefs.token = args["url"], args["token"]
bpy.ops.joker.add_head(use_demo=True)
bpy.context.scene.joker.reference_path = args["photo"]
out = {"fit": attempt(bpy.ops.joker.fit_rig)}
mesh, armature, model = rig_ops.rig_with_model(bpy.context)
out["params"] = rig_state.read_params(mesh, armature, model)
camera = bpy.context.scene.camera
out["camera"] = None if camera is None else [camera.name, bpy.context.scene.render.resolution_x]
prefs.server_url = args["dead_url"]
out["no_server"] = attempt(bpy.ops.joker.fit_rig)
report(**out)
"""


@pytest.mark.slow  # `make test-slow`: over the suite's 5-minute budget on CI's 2 cores
@pytest.mark.blender
def test_fit_rig_to_reference_in_blender(server, photo, answer, tmp_path):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    args = {"url": server.url, "token": server.token_file.read_text().strip(), "photo": str(photo), "dead_url": dead}
    out = run_blender(FIT_IN_BLENDER, tmp_path, json.dumps(args))
    assert out["fit"] == [["FINISHED"], ""]
    fitted, rig = answer["fit"]["params"], out["params"]
    for field in ("shape", "expression", "jaw_pose"):  # onto the shape keys and the armature, and back
        assert np.allclose(rig[field], fitted[field], atol=1e-4), field
    assert out["camera"] == ["Joker Alignment", 512]  # the photo's camera, at the photo's size
    assert out["no_server"][0] == ["ERROR"] and "joker serve" in out["no_server"][1]
