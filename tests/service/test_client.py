"""The stdlib client's own behaviour: unreachable servers, token files, timeouts, downloads."""

from __future__ import annotations

import pytest

from service_harness import free_port, png_bytes
from joker_core.client import JokerClient, ServerUnavailable
from joker_core.errors import JokerError
from joker_core.protocol import FieldError


def test_an_unreachable_server_says_how_to_start_one():
    with pytest.raises(ServerUnavailable, match="joker serve"):
        JokerClient(f"http://127.0.0.1:{free_port()}", token="t" * 32).health()


def test_a_missing_or_empty_token_file_is_explained(tmp_path):
    with pytest.raises(JokerError, match="cannot read the server token"):
        JokerClient(token_file=tmp_path / "absent")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(JokerError, match="is empty"):
        JokerClient(token_file=tmp_path / "empty")


def test_a_bad_spec_is_refused_before_anything_is_sent(tmp_path):
    client = JokerClient(f"http://127.0.0.1:{free_port()}", token="t" * 32)  # nobody listens: must not matter
    with pytest.raises(FieldError) as error:
        client.submit({"quality": "best"}, png_bytes())
    assert error.value.field == "spec.quality"
    with pytest.raises(JokerError, match=r"photo .*missing.jpg does not exist"):
        client.submit({}, tmp_path / "missing.jpg")
    (tmp_path / "me.png").write_bytes(png_bytes())
    with pytest.raises(JokerError, match=rf"photo {tmp_path} is a folder, not a file\. Fix: .* e\.g\. .*me\.png"):
        client.submit({}, tmp_path)  # 16.15
    with pytest.raises(JokerError, match=r"normal map .*view.png does not exist"):
        client.submit({}, png_bytes(), normal_maps={"view.png": tmp_path / "view.png"})


def test_wait_gives_up_after_its_timeout_and_download_lands_in_a_folder(server, tmp_path):
    client = server.client()
    job = client.submit({"prompt": "steps=300 step_s=0.05"}, png_bytes())
    with pytest.raises(JokerError, match="did not end within"):
        client.wait(job.id, timeout=0.5)
    client.cancel(job.id)
    done = client.wait(client.submit({"prompt": "steps=1"}, png_bytes()).id)
    path = client.download(done.id, "metrics.json", tmp_path)
    assert path == tmp_path / "metrics.json" and path.read_text().startswith("{")
