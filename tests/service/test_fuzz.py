"""Property-based fuzzing of every route in the server's own OpenAPI document: whatever a
client sends (path parameters, query strings, bodies, tokens), the answer is never a 5xx,
every 4xx names its field and fix, and the server keeps serving."""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service_harness import Server, b64, png_bytes
from joker_core.protocol import JobSpec

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
PNG = b64(png_bytes((8, 8)))
SPEC_VALUES = {
    "preset": st.sampled_from(["scream", "../x", ""]) | JSON,
    "rig": st.dictionaries(st.sampled_from(["shape", "jaw_pose", "expression", "tongue"]),
                           st.lists(st.floats(-1e4, 1e4) | JSON, max_size=5), max_size=3) | JSON,
    "views": st.fixed_dictionaries({}, optional={"grid": st.lists(st.integers(-3, 70), max_size=3),
                                                 "count": st.integers(-1, 5000), "size": JSON}) | JSON,
    "quality": st.sampled_from(["preview", "published", "ultra"]) | JSON,
    "prior": st.fixed_dictionaries({}, optional={"name": st.sampled_from(["projection", "joker", "x"]),
                                                 "weights": JSON}) | JSON,
    "blender_views": st.lists(st.fixed_dictionaries({"camera": JSON, "normal_map": st.text(max_size=12)}),
                              max_size=2) | JSON,
    "seed": st.integers(-1, 2**33) | JSON,
    "device": st.sampled_from(["auto", "cpu", "cuda:9", "tpu"]) | JSON,
}
SPECS = st.fixed_dictionaries({}, optional={
    f.name: SPEC_VALUES.get(f.name, JSON) for f in dataclasses.fields(JobSpec)})
SUBMISSIONS = st.fixed_dictionaries(
    {"spec": SPECS | JSON, "reference": st.sampled_from([PNG, "", "AAAA", b64(b"GIF89a" + bytes(20))]) | JSON},
    optional={"normal_maps": st.dictionaries(st.text(max_size=12), st.sampled_from([PNG, "??"]), max_size=2) | JSON,
              "priority": st.integers(-200, 200) | JSON, "keep": JSON, "extra": JSON})
PATH_VALUES = st.text(max_size=30) | st.sampled_from(["..", "../../token", "%2e%2e", "x/../..", "head.obj"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("fuzz"), "--max-upload-mb", "1").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(server):
    token = server.token_file.read_text().strip()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        finished = server.client().submit({"prompt": "steps=1"}, png_bytes())
        server.client().wait(finished.id)
        document = http.get("/v1/openapi.json").json()
        routes = [(path, method.upper(), operation) for path, item in document["paths"].items()
                  for method, operation in item.items()]
        yield http, routes, finished.id


def test_the_openapi_document_lists_every_route(api):
    _, routes, _ = api
    assert {(path, method) for path, method, _ in routes} >= {
        ("/v1/health", "GET"), ("/v1/info", "GET"), ("/v1/jobs", "POST"), ("/v1/jobs", "GET"),
        ("/v1/jobs/{job_id}", "GET"), ("/v1/jobs/{job_id}", "DELETE"), ("/v1/jobs/{job_id}/cancel", "POST"),
        ("/v1/jobs/{job_id}/requeue", "POST"), ("/v1/jobs/{job_id}/events", "GET"),
        ("/v1/jobs/{job_id}/artifacts", "GET"), ("/v1/jobs/{job_id}/artifacts/{name}", "GET")}


@settings(max_examples=250, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_no_request_yields_a_5xx(api, data):
    http, routes, finished_id = api
    path, method, operation = data.draw(st.sampled_from(routes), label="route")
    params = {p["name"]: p for p in operation.get("parameters", [])}
    url = path
    for name in re.findall(r"{(\w+)}", path):
        real_job = name == "job_id" and data.draw(st.integers(0, 9), label="real job") < 6
        value = finished_id if real_job else data.draw(PATH_VALUES, label=name)
        url = url.replace(f"{{{name}}}", urllib.parse.quote(value, safe="/" if name == "name" else ""))
    query = {name: data.draw(st.text(max_size=12) | st.integers(-5, 5000).map(str), label=name)
             for name, p in params.items() if p["in"] == "query" and data.draw(st.booleans())}
    request = {"params": query}
    if method == "POST" and path == "/v1/jobs":
        body = data.draw(SUBMISSIONS | JSON | st.binary(max_size=64), label="body")
        request["content"] = body if isinstance(body, bytes) else json.dumps(body).encode()  # NaN/Infinity too
    if data.draw(st.integers(0, 9), label="break the token") == 0:
        request["headers"] = {"Authorization": data.draw(st.sampled_from(["", "Bearer", "Basic x", "Bearer x" * 9]))}
    response = http.request(method, url, **request)
    assert response.status_code < 500, (method, url, response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["problem"] and error["fix"], error
    assert_documented(operation, response)


def assert_documented(operation: dict, response: httpx.Response) -> None:
    """The answer is one the OpenAPI document lists for this route, with the body it describes."""
    documented = operation["responses"]
    assert str(response.status_code) in documented, (operation["summary"], response.status_code, sorted(documented))
    schema = documented[str(response.status_code)].get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        jsonschema.validate(response.json(), schema)


def test_the_server_is_alive_after_the_fuzzing(server, api):
    http, _, _ = api
    assert http.get("/v1/health").json()["status"] == "ok"
    client = server.client()
    assert client.wait(client.submit({"prompt": "steps=1"}, png_bytes()).id).state.value == "succeeded"
