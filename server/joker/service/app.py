"""The HTTP API under /v1 (FastAPI). Every 4xx body is
``{"error": {"field", "problem", "fix", "message"}}``; nothing a client sends yields a 5xx."""

from __future__ import annotations

import asyncio
import binascii
import functools
import ipaddress
import json
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException

from joker_core import __version__
from joker_core.errors import JokerError
from joker_core.protocol import PROTOCOL_VERSION, FieldError, JobSpec, JobState, SequenceSpec, parse_spec

from .config import ServiceConfig
from .errors import TooLarge, Unauthorized, Unprocessable, status_of
from .schemas import (ARTIFACTS, EVENTS, FILE, HEALTH, INFO, JOB_LIST, JOB_STATUS, KEEP, PRIORITY, SUBMIT_FIELDS, errors,
                      json_response, submit_schema)
from .events import HEARTBEAT, EventHub, format_sse
from .executor import Executor, LocalExecutor
from .fit_route import add_fit_route
from .security import (NORMAL_MAP_FORMATS, PHOTO_FORMATS, check_image, is_plain_file_name, load_or_create_token,
                       token_matches)
from .store import JobStore
from .worker import EngineFunctions

log = logging.getLogger("joker.service")
HEARTBEAT_S = 15.0
RETENTION_EVERY_S = 3600.0
MAX_JSON_VALUES = 2_000_000  # a spec with 4096 views holds about 100k
PARALLEL_PARSES = 2
CHANGES = errors(404, 409, 503, 507)  # what a route that changes a job can answer besides its own
_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "WEBP": "webp"}  # MPO: a phone's JPEG with extra frames

def create_app(config: ServiceConfig) -> FastAPI:
    token = load_or_create_token(config.token_file)
    store = JobStore(config.database, config.jobs_dir)
    for job_id in store.recover():
        log.warning("job %s was running when the server stopped: marked interrupted", job_id)
    adopted, moved = store.adopt_orphans()
    if adopted or moved:
        log.warning("the job database %s %s: re-adopted %d job folders from %s%s", config.database,
                    "was missing or empty" if store.was_empty else "did not know some job folders", len(adopted),
                    config.jobs_dir, f"; moved {len(moved)} that do not describe themselves to "
                                     f"{config.data_dir / 'orphans'}" if moved else "")
    state: dict[str, Any] = {}
    parsing = asyncio.Semaphore(PARALLEL_PARSES)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        hub = EventHub(asyncio.get_running_loop())
        functions = EngineFunctions(config.job_function, config.sequence_function)
        executor: Executor
        if config.executor == "ray":
            from .ray_executor import RayExecutor, RaySettings  # Ray is imported only when asked for

            executor = RayExecutor(store, hub.publish, functions, config.device, config.cancel_grace_s,
                                   RaySettings(config.ray_address, config.ray_slots))
        else:
            executor = LocalExecutor(store, hub.publish, functions, config.device, config.cancel_grace_s)
        executor.start()
        state.update(hub=hub, executor=executor)
        retention = asyncio.create_task(_retention_loop(store, config))
        asyncio.get_running_loop().run_in_executor(None, _priors, config)  # headers read before /info asks
        try:
            yield
        finally:
            retention.cancel()
            await run_in_threadpool(executor.stop)
            store.close()

    app = FastAPI(title="Joker local inference server", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None,  # served under /v1, behind the token
                  redirect_slashes=False,  # a wrong path is a 404 that says so, not a redirect
                  description="One photo to a textured 3D head. Authenticate with `Authorization: Bearer <token>`; "
                              "the token is in the server's token file.")
    _install_error_handlers(app, config)
    bearer = HTTPBearer(auto_error=False, description="the token from the server's token file")

    def require_token(request: Request, _=Depends(bearer)) -> None:
        if not token_matches(request.headers.get("authorization"), token):
            raise Unauthorized("authorization", "missing or wrong access token",
                               "send 'Authorization: Bearer <token>' with the token from the server's token file "
                               "(`joker serve` prints where it is)")

    open_routes = APIRouter(prefix="/v1", responses=errors(403))
    routes = APIRouter(prefix="/v1", dependencies=[Depends(require_token)], responses=errors(401, 403))

    @open_routes.get("/health", summary="Liveness check (no token needed)", responses={
        200: json_response("the server runs jobs", HEALTH),
        503: json_response("the server runs but cannot run jobs (the problem says why)", HEALTH)})
    def health() -> JSONResponse:
        executor = state.get("executor")
        problem = executor.problem() if executor is not None else "the server is starting"
        if problem:
            return JSONResponse({"status": "unavailable", "problem": problem, "version": __version__}, status_code=503)
        # Kind and slot count only: where the cluster's processes run is for /v1/info, behind the token.
        return JSONResponse({"status": "ok", "version": __version__, "executor": executor.kind,
                             "slots": executor.slots})

    @routes.get("/openapi.json", summary="This API's OpenAPI document", response_model=None,
                responses={200: json_response("OpenAPI 3.1", {"type": "object", "required": ["openapi", "paths"]})})
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @routes.get("/info", summary="Version, device, memory, priors, queue", response_model=None,
                responses={200: json_response("what this server runs on", INFO), **errors(503)})
    async def info() -> dict[str, Any]:
        executor: Executor = state["executor"]
        return {"version": __version__, "protocol": PROTOCOL_VERSION, "device": config.device,
                "memory": _system_memory(), **executor.describe(),
                "queue_length": store.queue_length(), "priors": await run_in_threadpool(_priors, config)}

    @routes.post("/jobs", status_code=201, summary="Submit a job", response_model=None,
                 responses={201: json_response("the job, queued", JOB_STATUS), **errors(413, 415, 422, 503, 507)},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/json": {"schema": submit_schema(config.device)}}}})
    async def submit(request: Request) -> dict[str, Any]:
        async with parsing:  # a body read and parsed holds about twice its size: bound how many at once
            body = await _read_limited(request, config.max_upload_bytes)
            spec, inputs, priority, keep = await run_in_threadpool(_parse_submission, body, config)
        status = await run_in_threadpool(store.create, spec, inputs, priority, keep)
        state["executor"].notify()
        return status.to_dict()

    @routes.get("/jobs", summary="List jobs, newest first", response_model=None,
                responses={200: json_response("the jobs", JOB_LIST), **errors(422, 503)})
    def list_jobs(state_filter: JobState | None = Query(None, alias="state"),
                  limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        return {"jobs": [job.to_dict() for job in store.list(state_filter, limit)]}

    @routes.get("/jobs/{job_id}", summary="Job status", response_model=None,
                responses={200: json_response("the job", JOB_STATUS), **errors(404, 503)})
    def job_status(job_id: str) -> dict[str, Any]:
        return store.get(job_id).to_dict()

    @routes.post("/jobs/{job_id}/cancel", status_code=202, summary="Cancel a queued or running job",
                 response_model=None, responses={202: json_response("the job, cancelling", JOB_STATUS), **CHANGES})
    def cancel(job_id: str) -> dict[str, Any]:
        return state["executor"].cancel(job_id).to_dict()

    @routes.post("/jobs/{job_id}/requeue", summary="Run an interrupted, failed or cancelled job again",
                 response_model=None, responses={200: json_response("the job, queued", JOB_STATUS), **CHANGES})
    def requeue(job_id: str) -> dict[str, Any]:
        status = store.requeue(job_id)
        state["executor"].notify()
        return status.to_dict()

    @routes.delete("/jobs/{job_id}", status_code=204, summary="Delete a job that is not running, with its files",
                   responses={204: {"description": "deleted"}, **CHANGES})
    def delete(job_id: str) -> Response:
        store.delete(job_id)
        return Response(status_code=204)

    @routes.get("/jobs/{job_id}/artifacts", summary="The files a job produced so far", response_model=None,
                responses={200: json_response("names and sizes in bytes", ARTIFACTS), **errors(404, 503)})
    def artifacts(job_id: str) -> dict[str, Any]:
        return {"artifacts": [{"name": name, "size": store.artifact_path(job_id, name).stat().st_size}
                              for name in store.get(job_id).artifacts]}

    @routes.get("/jobs/{job_id}/artifacts/{name:path}", summary="Download one artifact", response_class=FileResponse,
                responses={200: FILE, **errors(404, 503)})
    def artifact(job_id: str, name: str) -> FileResponse:
        return FileResponse(store.artifact_path(job_id, name))

    @routes.get("/jobs/{job_id}/events", summary="Server-sent events: status, progress, preview",
                response_class=StreamingResponse, responses={200: EVENTS, **errors(404, 503)})
    async def events(job_id: str) -> StreamingResponse:
        store.get(job_id)
        hub: EventHub = state["hub"]
        queue = hub.subscribe(job_id)

        async def stream():
            try:
                current = store.get(job_id)  # read after subscribing: no event falls in between
                yield format_sse("status", current.to_dict())
                if current.state.finished:
                    return
                while True:
                    try:
                        kind, data = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                    except asyncio.TimeoutError:
                        yield HEARTBEAT
                        continue
                    yield format_sse(kind, data)
                    if kind == "status" and JobState(data["state"]).finished:
                        return
            finally:
                hub.unsubscribe(job_id, queue)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    add_fit_route(routes, config)
    app.include_router(open_routes)
    app.include_router(routes)
    app.state.api_routes = [*open_routes.routes, *routes.routes]  # for a 405's Allow
    app.openapi = functools.partial(_openapi_document, app)
    return app


def _openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, less the 422 it adds to each route with a path parameter: ours are
    strings that cannot fail validation, and every 422 we send has the Error body."""
    if app.openapi_schema is None:
        document = FastAPI.openapi(app)
        for operation in (operation for item in document["paths"].values() for operation in item.values()):
            if "HTTPValidationError" in json.dumps(operation["responses"].get("422", {})):
                del operation["responses"]["422"]
        for name in ("HTTPValidationError", "ValidationError"):
            document.get("components", {}).get("schemas", {}).pop(name, None)
    return app.openapi_schema


# -- submission ----------------------------------------------------------------------------

async def _read_limited(request: Request, limit: int) -> bytearray:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge("body", f"upload of {declared} bytes is over the {limit}-byte limit",
                       "send smaller images, or start the server with a larger --max-upload-mb")
    body = bytearray()  # one growing buffer: no list of chunks joined into a second copy
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise TooLarge("body", f"upload is over the {limit}-byte limit",
                           "send smaller images, or start the server with a larger --max-upload-mb")
        body += chunk
    return body


def _load_json(body: bytearray) -> Any:
    """Parse the body, emptying it. Each JSON value becomes a Python object 10-100 times
    its text's size (`{}` is 2 bytes, a dict 64): count them first, from the bytes."""
    values = body.count(b",") + body.count(b"[") + body.count(b"{")
    if values > MAX_JSON_VALUES:
        raise TooLarge("body", f"holds about {values} JSON values, over the limit of {MAX_JSON_VALUES}",
                       "send images as base64 strings and at most the views and frames the protocol allows")
    try:
        text = body.decode("utf-8")
        body.clear()  # freed before the parse allocates its objects
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Unprocessable("body", f"is not valid JSON ({str(error)[:120]})",
                            "send a JSON object with spec and reference") from error


def load_json_object(body: bytearray, known: tuple[str, ...], example: str) -> dict[str, Any]:
    """The body as a JSON object of only the `known` fields; `example` shows a good one."""
    data = _load_json(body)
    if not isinstance(data, dict):
        raise Unprocessable("body", "is not a JSON object", f"send {example}")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise Unprocessable(unknown[0], "is not a known field", f"send only {', '.join(known)}")
    return data


def _parse_submission(body: bytearray, config: ServiceConfig) -> tuple[JobSpec | SequenceSpec, dict[str, bytes], int, bool]:
    data = load_json_object(body, SUBMIT_FIELDS, "{\"spec\": {...}, \"reference\": \"<base64>\"}")
    spec = parse_spec(data.get("spec"))
    _check_cost(spec, config)
    if spec.device not in ("auto", config.device):
        raise Unprocessable("spec.device", f"this server owns device {config.device!r}, not {spec.device!r}",
                            "leave device at auto, or send the job to a server started for that device")
    low, high = PRIORITY["minimum"], PRIORITY["maximum"]
    priority = data.get("priority", PRIORITY["default"])
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise Unprocessable("priority", f"{priority!r} is not an integer in [{low}, {high}]",
                            f"send a priority from {low} to {high} (higher runs first)")
    keep = data.get("keep", KEEP["default"])
    if not isinstance(keep, bool):
        raise Unprocessable("keep", f"{keep!r} is not true or false", "send a JSON boolean")

    reference = decode_base64(data.pop("reference", None), "reference")  # popped: its text is freed once decoded
    _, image_format = check_image(reference, "reference", PHOTO_FORMATS, config.max_image_pixels)
    inputs = {f"reference.{_EXTENSIONS[image_format]}": reference}
    inputs.update(_normal_maps(data.get("normal_maps", {}), spec, config))
    return spec, inputs, priority, keep


# What a spec that leaves views.count or views.size to its quality preset is costed at:
# the largest rig any preset renders (published: 20 x 20 views of 512 px).
PRESET_MAX_VIEWS, PRESET_MAX_SIZE = 400, 512


def _check_cost(spec: JobSpec | SequenceSpec, config: ServiceConfig) -> None:
    """Views x pixels bound the memory a job's targets take: refuse what cannot fit before
    it reaches the worker."""
    views = (spec.job if isinstance(spec, SequenceSpec) else spec).views
    count = views.count or (views.grid[0] * views.grid[1] if views.grid else PRESET_MAX_VIEWS)
    size = views.size or PRESET_MAX_SIZE
    pixels = count * size * size
    if pixels > config.max_view_pixels:
        unset = views.count is None and views.grid is None
        unsaid = " (no views.count or views.grid: costed at the largest preset's 400)" if unset else ""
        raise Unprocessable("spec.views", f"{count} views of {size}x{size} px are {pixels / 2**20:.0f} megapixels{unsaid}, "
                            f"over this server's limit of {config.max_view_pixels / 2**20:.0f}",
                            "send fewer or smaller views, or start the server with a larger --max-view-megapixels")


def _normal_maps(files: Any, spec: JobSpec | SequenceSpec, config: ServiceConfig) -> dict[str, bytes]:
    if not isinstance(files, dict):
        raise Unprocessable("normal_maps", "is not an object", "send {\"name.png\": \"<base64 PNG>\", ...}")
    wanted = {view.normal_map: view for view in spec.blender_views}
    for name in files:
        if name not in wanted:
            raise Unprocessable(f"normal_maps.{name[:64]}", "is not named by any spec.blender_views[].normal_map",
                                "send exactly the normal maps the views name")
    inputs = {}
    for index, (name, view) in enumerate(wanted.items()):
        field = f"spec.blender_views[{index}].normal_map"
        if not name.endswith(".png") or not is_plain_file_name(name):
            raise Unprocessable(field, f"{name[:64]!r} is not a plain .png file name",
                                "name each normal map like view_000.png (letters, digits, '_', '.', '-')")
        if name not in files:
            raise Unprocessable(field, f"{name!r} was not uploaded", "add it to normal_maps")
        data = decode_base64(files.pop(name), f"normal_maps.{name}")
        size, _ = check_image(data, f"normal_maps.{name}", NORMAL_MAP_FORMATS, config.max_image_pixels)
        expected = (view.camera["width"], view.camera["height"])
        if size != expected:
            raise Unprocessable(f"normal_maps.{name}", f"is {size[0]}x{size[1]} pixels",
                                f"render it at the camera's {expected[0]}x{expected[1]}")
        inputs[f"normal_maps/{name}"] = data
    return inputs


def decode_base64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise Unprocessable(field, "is not a base64 string", "send the file's bytes base64-encoded")
    try:  # binascii reads the ASCII text in place; base64.b64decode would copy it to bytes first
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as error:
        raise Unprocessable(field, "is not valid base64", "send the file's bytes base64-encoded") from error


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


# -- info ------------------------------------------------------------------------------

def _system_memory() -> dict[str, int] | None:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return {"total_bytes": page * os.sysconf("SC_PHYS_PAGES"), "available_bytes": page * os.sysconf("SC_AVPHYS_PAGES")}
    except (AttributeError, ValueError, OSError):  # not on every platform
        return None


def _priors(config: ServiceConfig) -> list[dict[str, Any]]:
    """The weight-free prior always works; the joker prior needs a checkpoint it can read."""
    joker: dict[str, Any] = {"name": "joker", "weights": None, "ready": False,
                             "problem": "no weights configured; start the server with --joker-weights PATH"}
    if config.joker_weights is not None:
        try:
            changed = os.stat(config.joker_weights).st_mtime  # a replaced file is looked at again
        except OSError:
            changed = None
        ready, problem, needs_sd15 = _weights_status(str(config.joker_weights), changed)
        joker.update(weights=str(config.joker_weights), ready=ready, problem=problem, needs_sd15=needs_sd15)
    return [{"name": "projection", "weights": None, "ready": True, "problem": None}, joker]


@functools.lru_cache(maxsize=8)
def _weights_status(path: str, modified: float | None = None) -> tuple[bool, str | None, bool]:
    """(ready, problem, needs an SD1.5 folder), read from file headers; no weights loaded."""
    if not os.access(path, os.R_OK):
        return False, f"weights {path} are missing or unreadable", False
    from joker.prior.diffusion.loading import describe_weights  # torch + diffusers: only when configured

    description = describe_weights(Path(path))
    problem = "; ".join(description.problems) or (None if description.loadable else "not a weights format the prior knows")
    return description.loadable, problem, description.needs_sd15


async def _retention_loop(store: JobStore, config: ServiceConfig) -> None:
    while True:
        deleted = await run_in_threadpool(store.apply_retention, config.retention_days * 86400.0,
                                          config.retention_bytes)
        if deleted:
            log.info("retention deleted %d old jobs", len(deleted))
        await asyncio.sleep(RETENTION_EVERY_S)


# -- errors ----------------------------------------------------------------------------

def _error_response(status: int, field: str | None, problem: str, fix: str | None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    field, problem, fix = (_printable(text) for text in (field, problem, fix))
    message = f"{field}: {problem}. Fix: {fix}." if field else f"{problem}. Fix: {fix}."
    return JSONResponse({"error": {"field": field, "problem": problem, "fix": fix, "message": message}},
                        status_code=status, headers=headers)


def _printable(text: str | None) -> str | None:
    """Text a client sent, echoed in an error, may hold a lone surrogate ("\\ud800") that
    UTF-8 cannot encode: escape it rather than fail while answering."""
    return None if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _host_allowed(host_header: str, bound: str) -> bool:
    """Against DNS rebinding (as Jupyter does): a page on evil.example that resolves to
    127.0.0.1 sends `Host: evil.example`. IP literals and localhost always pass; a name
    only if the server was bound to it; anything if bound to all interfaces."""
    if bound in ("0.0.0.0", "::", ""):
        return True
    host = host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
    host = host.removeprefix("[").split("]")[0].lower()
    if host in ("localhost", bound.lower()):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _install_error_handlers(app: FastAPI, config: ServiceConfig) -> None:
    @app.middleware("http")
    async def check_host(request: Request, call_next):
        if not _host_allowed(request.headers.get("host", ""), config.host):
            return _error_response(403, "host", f"Host {request.headers.get('host', '')[:80]!r} is not this server",
                                   f"connect by address (http://127.0.0.1:{config.port}), or start the server "
                                   "with --host set to the name clients use")
        return await call_next(request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return _error_response(500, None, f"the server failed ({type(error).__name__})",
                               "this is a bug: please report it with the server log")

    @app.exception_handler(FieldError)
    async def field_error(_: Request, error: FieldError) -> JSONResponse:
        problem = error.problem.removeprefix(f"{error.field}: ")
        response = _error_response(status_of(error), error.field, problem, error.fix)
        if isinstance(error, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(JokerError)
    async def joker_error(_: Request, error: JokerError) -> JSONResponse:
        return _error_response(422, None, error.problem, error.fix)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"] if part not in ("query", "path", "body"))
        return _error_response(422, field or None, first["msg"], "see GET /v1/openapi.json or docs/server.md")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        fixes = {404: "see the routes in GET /v1/openapi.json", 405: "see the methods in GET /v1/openapi.json"}
        headers = dict(error.headers or {})
        if error.status_code == 405:  # Starlette names only the first route's methods
            headers["Allow"] = ", ".join(sorted({method for route in request.app.state.api_routes
                                                 if route.path_regex.match(request.url.path)
                                                 for method in route.methods}))
        return _error_response(error.status_code, "path" if error.status_code in (404, 405) else None,
                               f"{request.method} {request.url.path[:120]}: {error.detail}",
                               fixes.get(error.status_code, "see GET /v1/openapi.json or docs/server.md"),
                               headers=headers)
