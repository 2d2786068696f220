"""Fixtures of the service tests; the harness itself is in service_harness.py."""

from __future__ import annotations

import pytest

from service_harness import Server, png_bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("joker-server")).start()
    yield running
    running.stop()


@pytest.fixture
def photo() -> bytes:
    return png_bytes()
