"""The sequence tests' photo, and tests/ on the import path, so the service test harness
(service/service_harness.py) is importable however these tests are selected."""

import sys
from pathlib import Path

import pytest
from skimage import data

sys.path.insert(0, str(Path(__file__).parent.parent))


@pytest.fixture(scope="session")
def photo():
    """A real portrait (scikit-image's astronaut), as H x W x 3 uint8."""
    return data.astronaut()
