"""Python client of the local Joker server; standard library only, so Blender can use it.

    client = JokerClient()                      # http://127.0.0.1:8757, token from the token file
    job = client.submit({"preset": "scream"}, "me.jpg")
    done = client.wait(job.id, on_progress=lambda e: print(e.stage, e.progress))
    client.download_all(done.id, "out/")

Every failure is a `JokerError` subclass with the server's field and fix.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .errors import JokerError
from .files import atomic_write_bytes, input_file
from .protocol import JobSpec, JobState, JobStatus, ProgressEvent, SequenceSpec, parse_spec

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8757
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


def default_token_file() -> Path:
    """$XDG_CONFIG_HOME/joker/token, else ~/.config/joker/token (%APPDATA%\\joker\\token)."""
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "joker" / "token"
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "joker" / "token"


class ServerError(JokerError):
    """The server refused a request; `status` is the HTTP status, `field` the culprit."""

    def __init__(self, status: int, field: str | None, problem: str, fix: str | None):
        self.status = status
        self.field = field
        super().__init__(f"{field}: {problem}" if field else problem, fix)


class Unauthorized(ServerError):
    pass


class NotFound(ServerError):
    pass


class Conflict(ServerError):
    pass


class PayloadTooLarge(ServerError):
    pass


class InvalidRequest(ServerError):
    pass


class ServerUnavailable(JokerError):
    pass


class JobFailed(JokerError):
    """`wait` saw the job end other than succeeded; `status` says how."""

    def __init__(self, status: JobStatus):
        self.status = status
        super().__init__(f"job {status.id} ended {status.state.value}"
                         + (f": {status.error}" if status.error else ""),
                         None if status.error else "see the job's status and log")


class InsufficientStorage(ServerError):
    """507: the server's disk is full; the job was not stored."""


_ERRORS = {401: Unauthorized, 404: NotFound, 409: Conflict, 413: PayloadTooLarge, 507: InsufficientStorage}


class JokerClient:
    def __init__(self, url: str = DEFAULT_URL, token: str | None = None,
                 token_file: str | os.PathLike | None = None, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        if token is None:
            path = Path(token_file) if token_file else default_token_file()
            try:
                token = path.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise JokerError(f"cannot read the server token from {path} ({error.strerror})",
                                 "start the server once (`joker serve`) or pass the token file") from error
            if not token:
                raise JokerError(f"token file {path} is empty", "delete it and restart `joker serve` to get a new one")
        self._token = token

    # -- jobs ------------------------------------------------------------------------------

    def submit(self, spec: JobSpec | SequenceSpec | Mapping[str, Any], reference: str | os.PathLike | bytes,
               normal_maps: Mapping[str, str | os.PathLike | bytes] | None = None,
               priority: int = 0, keep: bool = False) -> JobStatus:
        """Validate `spec` (a JobSpec, or a SequenceSpec) here, then upload it with the photo
        and any Blender-rendered normal maps (names as in spec.blender_views[].normal_map)."""
        spec = spec if isinstance(spec, (JobSpec, SequenceSpec)) else parse_spec(dict(spec))
        body = {"spec": spec.to_dict(), "reference": _base64_of(reference, "photo"), "priority": priority, "keep": keep,
                "normal_maps": {name: _base64_of(data, "normal map") for name, data in (normal_maps or {}).items()}}
        return JobStatus.from_dict(self._json("POST", "/v1/jobs", body))

    def status(self, job_id: str) -> JobStatus:
        return JobStatus.from_dict(self._json("GET", f"/v1/jobs/{_quote(job_id)}"))

    def jobs(self, state: JobState | str | None = None, limit: int = 100) -> list[JobStatus]:
        query = {"limit": limit} | ({"state": JobState(state).value} if state else {})
        data = self._json("GET", "/v1/jobs?" + urllib.parse.urlencode(query))
        return [JobStatus.from_dict(job) for job in data["jobs"]]

    def cancel(self, job_id: str) -> JobStatus:
        return JobStatus.from_dict(self._json("POST", f"/v1/jobs/{_quote(job_id)}/cancel"))

    def requeue(self, job_id: str) -> JobStatus:
        return JobStatus.from_dict(self._json("POST", f"/v1/jobs/{_quote(job_id)}/requeue"))

    def delete(self, job_id: str) -> None:
        self._request("DELETE", f"/v1/jobs/{_quote(job_id)}").close()

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/v1/health")

    def info(self) -> dict[str, Any]:
        return self._json("GET", "/v1/info")

    def fit(self, reference: str | os.PathLike | bytes, model: str | None = None,
            settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The rig fitted to the photo's face (POST /v1/fit): {"model", "fit": ReferenceFit as JSON}."""
        body = {"reference": _base64_of(reference, "photo"), "settings": dict(settings or {})} | ({"model": model} if model else {})
        return self._json("POST", "/v1/fit", body)

    # -- progress --------------------------------------------------------------------------

    def events(self, job_id: str, read_timeout: float = 60.0) -> Iterator[tuple[str, dict[str, Any]]]:
        """(kind, data) from the server-sent event stream: "status" first, then
        "progress" / "preview" / "status"; ends after the job ends. The server sends a
        keep-alive every 15 s, so a read that takes `read_timeout` means a dead link."""
        with self._request("GET", f"/v1/jobs/{_quote(job_id)}/events", timeout=read_timeout) as response:
            kind, data = "message", []
            for raw in response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield kind, json.loads("\n".join(data))
                    kind, data = "message", []

    def wait(self, job_id: str, on_progress: Callable[[ProgressEvent], None] | None = None,
             timeout: float | None = None) -> JobStatus:
        """Follow a job to its end; the final status if it succeeded, else JobFailed.
        A dropped event stream is resumed (its first event is the current status)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = 60.0 if deadline is None else max(0.1, min(60.0, deadline - time.monotonic()))
            try:
                for kind, data in self.events(job_id, read_timeout=remaining):
                    if kind == "progress" and on_progress is not None:
                        on_progress(ProgressEvent.from_dict(data))
                    elif kind == "status" and JobState(data["state"]).finished:
                        return _succeeded(JobStatus.from_dict(data))
                    if deadline is not None and time.monotonic() > deadline:
                        break
            except (ServerUnavailable, OSError):
                time.sleep(0.5)  # the server restarts, or the connection dropped: follow again
            if deadline is not None and time.monotonic() > deadline:
                raise JokerError(f"job {job_id} did not end within {timeout:g} s",
                                 "wait longer, or cancel it with client.cancel(job_id)")

    # -- artifacts -------------------------------------------------------------------------

    def download(self, job_id: str, name: str, destination: str | os.PathLike) -> Path:
        """One artifact to `destination` (a file path, or an existing folder), atomically."""
        destination = Path(destination)
        if destination.is_dir():
            destination = destination / name
        path = f"/v1/jobs/{_quote(job_id)}/artifacts/{urllib.parse.quote(name)}"
        with self._request("GET", path) as response:
            return atomic_write_bytes(destination, response.read())

    def download_all(self, job_id: str, folder: str | os.PathLike) -> list[Path]:
        return [self.download(job_id, name, Path(folder) / name) for name in self.status(job_id).artifacts]

    # -- transport -------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        with self._request(method, path, body) as response:
            return json.loads(response.read() or b"null")

    def _request(self, method: str, path: str, body: Any = None, timeout: float | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as error:
            raise _server_error(error) from None
        except (urllib.error.URLError, ConnectionError) as error:
            raise ServerUnavailable(f"no Joker server answers at {self.url} ({getattr(error, 'reason', error)})",
                                    "start it with `joker serve`, or check the server URL") from error


def _server_error(error: urllib.error.HTTPError) -> ServerError:
    try:
        detail = json.loads(error.read())["error"]
        field, problem, fix = detail.get("field"), detail["problem"], detail.get("fix")
    except (ValueError, KeyError, TypeError, OSError):
        field, problem, fix = None, f"HTTP {error.code} {error.reason}", "check the server log"
    return _ERRORS.get(error.code, InvalidRequest)(error.code, field, problem, fix)


def _succeeded(status: JobStatus) -> JobStatus:
    if status.state is not JobState.SUCCEEDED:
        raise JobFailed(status)
    return status


def _base64_of(source: str | os.PathLike | bytes, what: str) -> str:
    if not isinstance(source, bytes):
        path = input_file(source, what)
        try:
            source = path.read_bytes()
        except OSError as error:
            raise JokerError(f"cannot read {what} {path} ({error.strerror})",
                             f"give the path of a {what} file you can read") from error
    return base64.b64encode(source).decode("ascii")


def _quote(job_id: str) -> str:
    return urllib.parse.quote(job_id, safe="")
