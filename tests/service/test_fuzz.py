"""Property-based fuzzing of every route in the server's own OpenAPI document: whatever a
client sends (path parameters, query strings, bodies, tokens), the answer is never a 5xx,
every 4xx names its field and fix, every answer is one the document lists, and the server
keeps serving. Then a stateful part: valid jobs built from the published spec schema,
driven through submit, poll, cancel, requeue, delete and restarts."""

from __future__ import annotations

import dataclasses
import json
import re
import time
import urllib.parse

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (Bundle, RuleBasedStateMachine, invariant, multiple, precondition, rule,
                                 run_state_machine_as_test)

from schema_strategy import from_schema
from service_harness import Server, b64, png_bytes
from joker_core.protocol import JobSpec, parse_spec

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


# -- jobs built from the published schema, driven through their lives -------------------------

@pytest.fixture(scope="module")
def submit_operation(api):
    http, _, _ = api
    return http.get("/v1/openapi.json").json()["paths"]["/v1/jobs"]["post"]


@pytest.fixture(scope="module")
def specs(submit_operation):
    """Job specs as a client that reads only the OpenAPI document would build them."""
    body = submit_operation["requestBody"]["content"]["application/json"]["schema"]
    return from_schema(body["properties"]["spec"])


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_spec_the_published_schema_describes_is_one_the_protocol_takes(specs, data):
    """The schema is no looser than the parser (the judge), so clients can trust it."""
    parse_spec(data.draw(specs, label="spec"))


ENDED = {"succeeded", "failed", "cancelled", "interrupted"}
REQUEUEABLE = {"failed", "cancelled", "interrupted"}


class JobLives(RuleBasedStateMachine):
    """Submit (specs from the published schema), poll, cancel, requeue, delete and restart
    the server (SIGTERM or SIGKILL) in any order. Invariants: no 5xx and every answer as
    documented; a job never moves backwards (an ended job stays as it ended until it is
    re-queued; progress and artifacts only grow); a job that fails says why and how to fix
    it, never "this is a bug"; no restart loses a job or leaves one running from before it;
    every job can be stopped. With the demo engine, a job's length comes from its prompt."""

    jobs = Bundle("jobs")

    def __init__(self, server: Server, operations: dict, specs: st.SearchStrategy, photo: str, demo: bool,
                 restarts: int):
        super().__init__()
        self.server, self.operations, self.specs, self.restarts_left = server, operations, specs, restarts
        self.photo, self.demo = photo, demo
        self.http = self._session()
        self.seen: dict[str, dict] = {}  # the last status of each job not deleted
        self.deleted: set[str] = set()

    def _session(self) -> httpx.Client:
        token = self.server.token_file.read_text().strip()
        return httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def _call(self, method: str, route: str, job: str = "", **request) -> httpx.Response:
        response = self.http.request(method, route.replace("{job_id}", job), **request)
        assert_documented(self.operations[(route, method)], response)
        if job in self.deleted:
            assert response.status_code == 404, response.text
        return response

    def _observe(self, job: str, status: dict) -> None:
        before = self.seen[job]
        if before["state"] in ENDED:
            assert status["state"] == before["state"] and status["artifacts"] == before["artifacts"], (before, status)
        elif status["state"] == before["state"]:
            assert status["progress"] >= before["progress"] and set(before["artifacts"]) <= set(status["artifacts"])
        assert not (before["state"] == "running" and status["state"] == "queued"), (before, status)
        if status["state"] == "succeeded":
            assert {"head.obj", "metrics.json"} <= set(status["artifacts"]), status
        if status["state"] in ("failed", "interrupted"):
            assert "Fix:" in status["error"] and "this is a bug" not in status["error"], status
        self.seen[job] = status

    @rule(target=jobs, data=st.data(), steps=st.integers(1, 40))
    def submit(self, data, steps):
        spec = data.draw(self.specs, label="spec")
        if self.demo:
            shared = spec.setdefault("job", {}) if "frames" in spec else spec
            shared["prompt"] = f"steps={steps} step_s=0.01"  # the demo engine's knobs
        for holder in (spec, *spec.get("frames", ())):
            holder.pop("blender_views", None)  # uploads of normal maps are fuzzed above
        answer = self._call("POST", "/v1/jobs", json={"spec": spec, "reference": self.photo})
        if answer.status_code == 422:  # the one bound the schema cannot say: views x pixels
            assert answer.json()["error"]["field"] == "spec.views", answer.text
            return multiple()
        assert answer.status_code == 201, answer.text
        status = answer.json()
        assert status["state"] == "queued" and status["progress"] == 0
        self.seen[status["id"]] = status
        return status["id"]

    @rule(job=jobs)
    def poll(self, job):
        answer = self._call("GET", "/v1/jobs/{job_id}", job)
        if job not in self.deleted:
            assert answer.status_code == 200, answer.text
            self._observe(job, answer.json())

    @rule(job=jobs)
    def cancel(self, job):
        answer = self._call("POST", "/v1/jobs/{job_id}/cancel", job)
        if answer.status_code == 202:
            assert self.seen[job]["state"] not in ENDED
            self._observe(job, answer.json())
        elif answer.status_code == 409:
            assert answer.json()["error"]["problem"].split("(")[-1].rstrip(")") in ENDED, answer.text

    @rule(job=jobs)
    def requeue(self, job):
        answer = self._call("POST", "/v1/jobs/{job_id}/requeue", job)
        if answer.status_code == 200:
            assert self.seen[job]["state"] != "succeeded" and answer.json()["state"] == "queued"
            self.seen[job] = answer.json()  # a new life
        elif answer.status_code == 409:
            assert answer.json()["error"]["problem"].rsplit(" ", 1)[-1] not in REQUEUEABLE, answer.text

    @rule(job=jobs)
    def delete(self, job):
        answer = self._call("DELETE", "/v1/jobs/{job_id}", job)
        if answer.status_code == 204:
            self.deleted.add(job)
            self.seen.pop(job)
        elif answer.status_code == 409:
            assert answer.json()["error"]["problem"].endswith("is running"), answer.text

    @precondition(lambda self: self.restarts_left > 0)  # each costs seconds: a few per example
    @rule(kill=st.booleans())
    def restart(self, kill):
        self.restarts_left -= 1
        self.http.close()
        self.server.stop(kill=kill)
        stopped = time.time()
        self.server.start()
        self.http = self._session()
        for job, before in list(self.seen.items()):
            answer = self._call("GET", "/v1/jobs/{job_id}", job)
            assert answer.status_code == 200, f"job {job} was lost in the restart"
            status = answer.json()
            if status["state"] == "running":  # only a job started since
                assert status["started_at"] >= stopped, status
            self._observe(job, status)

    @invariant()
    def serving(self):
        assert self.http.get("/v1/health").json()["status"] == "ok"

    def teardown(self):
        """Every job ends once cancelled: none is stuck, and the next example starts idle."""
        for job in self.seen:
            self._call("POST", "/v1/jobs/{job_id}/cancel", job)
        deadline = time.monotonic() + 10
        for job in self.seen:
            while (state := self._call("GET", "/v1/jobs/{job_id}", job).json()["state"]) not in ENDED:
                assert time.monotonic() < deadline, f"job {job} is still {state} 10 s after its cancel"
                time.sleep(0.02)
        self.http.close()


def _lives(server, api, specs, photo: str, demo: bool, examples: int, steps: int, restarts: int) -> None:
    _, routes, _ = api
    operations = {(path, method): operation for path, method, operation in routes}
    run_state_machine_as_test(lambda: JobLives(server, operations, specs, photo, demo, restarts), settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
        suppress_health_check=list(HealthCheck)))


def test_job_lives_keep_their_invariants(server, api, specs):
    """The demo engine, without restarts (a server starts in seconds): those are in the
    slow run, and in test_resilience."""
    _lives(server, api, specs, PNG, demo=True, examples=3, steps=10, restarts=0)


@pytest.fixture(scope="module")
def tiny_engine_server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("fuzz-engine"), "--job-function", "tiny_engine:generate",
                     "--device", "cpu").start()
    yield running
    running.stop()


@pytest.mark.slow
def test_job_lives_keep_their_invariants_on_the_tiny_engine_across_restarts(tiny_engine_server, api, specs):
    """The real engine at test size runs what the schema describes: a job it cannot run
    fails with the engine's own error and fix, never a bug."""
    from skimage import data

    from joker_core.png import encode_png

    _lives(tiny_engine_server, api, specs, b64(encode_png(data.astronaut())), demo=False, examples=8, steps=20,
           restarts=1)
