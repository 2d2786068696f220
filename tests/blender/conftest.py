"""Shared by the add-on's server tests: a reference photo and real `joker serve` processes."""

import os
from pathlib import Path

import pytest
from PIL import Image

from service.service_harness import Server

HERE = Path(__file__).parent
PHOTO_COLOUR = (200, 120, 90)


class _JobFolderServer(Server):
    """A server whose worker can import the job functions in this folder, restarts included."""

    def start(self) -> Server:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
            return super().start()


@pytest.fixture(scope="session")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "portrait.png"
    Image.new("RGB", (96, 96), PHOTO_COLOUR).save(path)
    return path


@pytest.fixture(scope="session")
def portrait(tmp_path_factory) -> Path:
    """A real face photo (scikit-image's astronaut), for the engine's automatic alignment."""
    import skimage.data
    path = tmp_path_factory.mktemp("portrait") / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(path)
    return path


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    """serve(job_function) -> a started Server whose worker runs `job_function`
    ("module:function"; modules in this folder are importable); stopped after the module."""
    started = []

    def start(job_function: str) -> Server:
        server = _JobFolderServer(tmp_path_factory.mktemp("server"), "--job-function", job_function).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
