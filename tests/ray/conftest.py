"""One real local Ray instance (2 CPUs) for every test in this folder: it takes seconds to
start, so it starts once. Its workers import the test job functions through PYTHONPATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
JOB_PATHS = [str(TESTS / "ray"), str(TESTS / "service"), str(TESTS / "sequence"), str(TESTS)]
sys.path[:0] = [path for path in JOB_PATHS if path not in sys.path]


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*JOB_PATHS, saved or ""])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved
