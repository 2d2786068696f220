"""The job protocol: what a job asks for, the states it goes through, the progress it reports.

One definition for every side: the Blender add-on validates a `JobSpec` before sending it,
the server validates it again on arrival, and the engine (`joker.api.generate`) receives it.
Everything here is plain data that round-trips through JSON (`to_dict` / `from_dict`).
Validation errors are `FieldError`s: they name the offending field by its JSON path
(``spec.views.grid[1]``) and the fix, so every front end can show them as they are.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping, Sequence

from .cameras import Camera
from .errors import JokerError
from .flame_format import FLAME_SHAPE_COMPONENTS
from .presets import get_preset
from .rig_params import RigParams, check_length

PROTOCOL_VERSION = 1

QUALITIES = ("preview", "standard", "high", "published")
MATERIALS = ("lit", "unlit")  # the GLB's: base colour that scene lights shade, or KHR_materials_unlit (docs/mesh.md)
PRIORS = ("projection", "joker")

FLAME_EXPRESSION_COMPONENTS = 100  # FLAME 2020's; with its 300 identity ones, the most a job may send

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,2})?)$")
MAX_PROMPT_CHARS = 2000
MAX_VIEWS = 4096
_CAMERA_FIX = "send c2w (4x4), fx, fy, cx, cy, width and height"


class FieldError(JokerError):
    """A request field is wrong; `field` is its JSON path, e.g. ``spec.views.grid[0]``."""

    def __init__(self, field_path: str, problem: str, fix: str):
        self.field = field_path
        super().__init__(f"{field_path}: {problem}", fix)


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the server died while the job ran; can be re-queued

    @property
    def finished(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


# -- small field readers: each names the field and the fix -------------------------------

def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FieldError(path, f"expected a JSON object, got {_kind(value)}", "send an object {...}")
    return value


def _no_unknown_keys(data: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise FieldError(f"{path}.{unknown[0]}", "is not a known field",
                         f"remove it; known fields: {', '.join(allowed)}")


def _number(value: Any, path: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FieldError(path, f"expected a finite number, got {_kind(value)}", f"send a number in [{low}, {high}]")
    if not low <= value <= high:
        raise FieldError(path, f"{value} is out of range", f"send a number in [{low}, {high}]")
    return float(value)


def _integer(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(path, f"expected an integer, got {_kind(value)}", f"send an integer in [{low}, {high}]")
    if not low <= value <= high:
        raise FieldError(path, f"{value} is out of range", f"send an integer in [{low}, {high}]")
    return value


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise FieldError(path, f"expected true or false, got {_kind(value)}", "send true or false")
    return value


def _text(value: Any, path: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise FieldError(path, f"expected a string, got {_kind(value)}", "send a string")
    if len(value) > max_chars or "\x00" in value:
        raise FieldError(path, f"is longer than {max_chars} characters or contains NUL",
                         f"send at most {max_chars} printable characters")
    return value


def _choice(value: Any, path: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise FieldError(path, f"{value!r} is not one of {', '.join(choices)}",
                         f"use one of: {', '.join(choices)}")
    return value


def _optional_path(value: Any, path: str) -> str | None:
    return None if value is None else _text(value, path, 4096)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# -- the job spec ------------------------------------------------------------------------

def validate_rig(data: Any, path: str = "spec.rig") -> RigParams:
    """FLAME parameters in the rig_params layout; missing vectors mean zeros (neutral)."""
    data = _object(data, path)
    for key, value in data.items():  # one at a time, so the error names the field
        try:
            RigParams.from_dict({key: value})
            if key == "shape":
                check_length(key, len(value), FLAME_SHAPE_COMPONENTS)
            elif key == "expression":
                check_length(key, len(value), FLAME_EXPRESSION_COMPONENTS)
        except JokerError as error:
            raise FieldError(f"{path}.{key}", error.problem, error.fix or "send a list of numbers") from error
    return RigParams.from_dict(data)


def _rig_dict(rig: RigParams | None) -> dict[str, list[float]] | None:
    return None if rig is None else rig.to_dict()


def validate_preset(name: Any, path: str = "spec.preset") -> str:
    name = _text(name, path, 64)
    try:
        return get_preset(name).name
    except JokerError as error:
        raise FieldError(path, error.problem, error.fix or "use a known preset") from error


@dataclass(frozen=True)
class ViewSpec:
    """The view rig the distillation uses: a grid over azimuth x elevation, or `count`
    random views over the same ranges. None means: the quality preset decides."""

    grid: tuple[int, int] | None = None
    count: int | None = None
    azimuth_range: float = 45.0
    elevation_range: float = 20.0
    size: int | None = None  # render size in pixels

    @classmethod
    def from_dict(cls, data: Any, path: str = "spec.views") -> "ViewSpec":
        data = _object(data, path)
        _no_unknown_keys(data, [f.name for f in fields(cls)], path)
        grid = data.get("grid")
        if grid is not None:
            if not isinstance(grid, list) or len(grid) != 2:
                raise FieldError(f"{path}.grid", "expected [n_azimuth, n_elevation]", "send two integers")
            grid = (_integer(grid[0], f"{path}.grid[0]", 1, 64), _integer(grid[1], f"{path}.grid[1]", 1, 64))
        count = data.get("count")
        if count is not None:
            count = _integer(count, f"{path}.count", 1, MAX_VIEWS)
        if grid is not None and count is not None:
            raise FieldError(f"{path}.count", "grid and count are both given", "send either grid or count")
        size = data.get("size")
        return cls(grid=grid, count=count,
                   azimuth_range=_number(data.get("azimuth_range", 45.0), f"{path}.azimuth_range", 0.0, 180.0),
                   elevation_range=_number(data.get("elevation_range", 20.0), f"{path}.elevation_range", 0.0, 89.0),
                   size=None if size is None else _integer(size, f"{path}.size", 16, 2048))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["grid"] = list(self.grid) if self.grid else None
        return data


@dataclass(frozen=True)
class PriorSpec:
    """Which 2D prior: the weight-free "projection" prior, or "joker" with a weights file
    (a path on the machine that runs the engine)."""

    name: str = "projection"
    weights: str | None = None
    sd15: str | None = None  # SD1.5 folder: tokenizer and configs the released checkpoint lacks
    vae: str | None = None   # separate VAE folder (e.g. sd-vae-ft-mse)

    @classmethod
    def from_dict(cls, data: Any, path: str = "spec.prior") -> "PriorSpec":
        data = _object(data, path)
        _no_unknown_keys(data, ("name", "weights", "sd15", "vae"), path)
        name = _choice(data.get("name", "projection"), f"{path}.name", PRIORS)
        weights, sd15, vae = (_optional_path(data.get(key), f"{path}.{key}") for key in ("weights", "sd15", "vae"))
        if name == "joker" and not weights:
            raise FieldError(f"{path}.weights", "the joker prior needs its weights file",
                             "give the path of the released checkpoint, or use the projection prior")
        return cls(name=name, weights=weights, sd15=sd15, vae=vae)


@dataclass(frozen=True)
class BlenderView:
    """A normal map rendered in Blender and the camera it was rendered with. `normal_map`
    names an uploaded PNG (over HTTP) or is a path (engine API)."""

    camera: dict[str, Any]
    normal_map: str

    @classmethod
    def from_dict(cls, data: Any, path: str) -> "BlenderView":
        data = _object(data, path)
        _no_unknown_keys(data, ("camera", "normal_map"), path)
        camera_data = _object(data.get("camera"), f"{path}.camera")
        try:
            camera = Camera.from_dict(camera_data).to_dict()
        except JokerError as error:
            raise FieldError(f"{path}.camera", error.problem, error.fix or _CAMERA_FIX) from error
        except OverflowError as error:  # an infinite width or height (JSON 1e400)
            raise FieldError(f"{path}.camera", f"a size is not finite ({error})", _CAMERA_FIX) from error
        for key in ("fx", "fy", "cx", "cy"):
            _number(camera[key], f"{path}.camera.{key}", -1e6, 1e6)
        return cls(camera=camera, normal_map=_text(data.get("normal_map"), f"{path}.normal_map", 4096))


def validate_alignment(data: Any, path: str = "spec.alignment") -> dict[str, Any]:
    """How the reference photo sits relative to the rig, when automatic detection is not
    wanted or fails: the photo's camera (Camera.to_dict), the two eye centres in pixels,
    and/or the view's azimuth/elevation and the lens's field of view (degrees)."""
    from .cameras import Camera

    data = _object(data, path)
    _no_unknown_keys(data, ALIGNMENT_FIELDS, path)
    alignment: dict[str, Any] = {}
    if data.get("camera") is not None:
        try:
            alignment["camera"] = Camera.from_dict(_object(data["camera"], f"{path}.camera")).to_dict()
        except JokerError as error:
            raise FieldError(f"{path}.camera", error.problem, error.fix or "send Camera.to_dict()") from error
    if data.get("eyes") is not None:
        eyes = data["eyes"]
        if not isinstance(eyes, list) or len(eyes) != 2 or not all(isinstance(e, list) and len(e) == 2 for e in eyes):
            raise FieldError(f"{path}.eyes", "expected [[x, y], [x, y]]", "send the two eye centres in photo pixels")
        alignment["eyes"] = [[_number(v, f"{path}.eyes[{i}][{j}]", -1e5, 1e5) for j, v in enumerate(eye)]
                             for i, eye in enumerate(eyes)]
    for key, (low, high) in ALIGNMENT_RANGES.items():
        if data.get(key) is not None:
            alignment[key] = _number(data[key], f"{path}.{key}", low, high)
    return alignment


ALIGNMENT_FIELDS = ("camera", "eyes", "azimuth_deg", "elevation_deg", "fov_deg")
# The photo's viewpoint and lens (degrees), wherever an alignment is checked.
ALIGNMENT_RANGES = {"azimuth_deg": (-180.0, 180.0), "elevation_deg": (-89.0, 89.0), "fov_deg": (1.0, 170.0)}


@dataclass(frozen=True)
class JobSpec:
    """Everything one head generation needs besides the reference photo."""

    preset: str | None = None                   # expression preset name, or
    rig: RigParams | None = None    # explicit FLAME parameters
    prompt: str = ""
    negative_prompt: str = ""
    views: ViewSpec = field(default_factory=ViewSpec)
    quality: str = "standard"
    prior: PriorSpec = field(default_factory=PriorSpec)
    seed: int = 0
    device: str = "auto"
    blender_views: tuple[BlenderView, ...] = ()  # take precedence over server-side rendering
    model: str | None = None        # head model file on the engine's machine; None: the demo head
    alignment: dict[str, Any] | None = None  # photo alignment overrides (validate_alignment)
    # LPIPS (VGG) weights file on the engine's machine, for presets that weight LPIPS (high,
    # published); without it they train without LPIPS and metrics.json says "lpips": "missing".
    lpips_weights: str | None = None
    rig_topology: bool = False  # also the rig's topology fitted to the surface (head_rig.glb); sequences always
    material: str = "lit"

    @property
    def unlit(self) -> bool:
        """Whether the GLBs' materials are KHR_materials_unlit (docs/mesh.md, "Lighting")."""
        return self.material == "unlit"

    @classmethod
    def from_dict(cls, data: Any, path: str = "spec") -> "JobSpec":
        data = _object(data, path)
        _no_unknown_keys(data, [f.name for f in fields(cls)], path)
        preset = data.get("preset")
        rig = data.get("rig")
        if preset is not None and rig is not None:
            raise FieldError(f"{path}.rig", "preset and rig are both given", "send either a preset name or rig parameters")
        device = _text(data.get("device", "auto"), f"{path}.device", 16)
        if not _DEVICE.match(device):
            raise FieldError(f"{path}.device", f"{device!r} is not a device", "use auto, cpu, mps, cuda or cuda:N")
        blender_views = data.get("blender_views", [])
        if not isinstance(blender_views, list) or len(blender_views) > MAX_VIEWS:
            raise FieldError(f"{path}.blender_views", f"expected a list of at most {MAX_VIEWS} views",
                             "send [{camera, normal_map}, ...]")
        return cls(
            preset=None if preset is None else validate_preset(preset, f"{path}.preset"),
            rig=None if rig is None else validate_rig(rig, f"{path}.rig"),
            prompt=_text(data.get("prompt", ""), f"{path}.prompt", MAX_PROMPT_CHARS),
            negative_prompt=_text(data.get("negative_prompt", ""), f"{path}.negative_prompt", MAX_PROMPT_CHARS),
            views=ViewSpec.from_dict(data.get("views", {}), f"{path}.views"),
            quality=_choice(data.get("quality", "standard"), f"{path}.quality", QUALITIES),
            prior=PriorSpec.from_dict(data.get("prior", {}), f"{path}.prior"),
            seed=_integer(data.get("seed", 0), f"{path}.seed", 0, 2**32 - 1),
            device=device,
            blender_views=tuple(BlenderView.from_dict(view, f"{path}.blender_views[{i}]")
                                for i, view in enumerate(blender_views)),
            model=_optional_path(data.get("model"), f"{path}.model"),
            alignment=None if data.get("alignment") is None else validate_alignment(data["alignment"],
                                                                                    f"{path}.alignment"),
            lpips_weights=_optional_path(data.get("lpips_weights"), f"{path}.lpips_weights"),
            rig_topology=_flag(data.get("rig_topology", False), f"{path}.rig_topology"),
            material=_choice(data.get("material", "lit"), f"{path}.material", MATERIALS),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rig"] = _rig_dict(self.rig)
        data["views"] = self.views.to_dict()
        data["blender_views"] = [asdict(view) for view in self.blender_views]
        return data


# -- progress ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ProgressEvent:
    """What a running job reports. `preview` is the path of an image the job has just
    written (absolute, or relative to its output folder); the server republishes it as an
    artifact name."""

    stage: str
    progress: float = 0.0               # 0..1 over the whole job
    eta_s: float | None = None
    prior_evaluations: int = 0
    nerf_steps: int = 0
    message: str = ""
    preview: str | None = None
    frame: int | None = None            # a sequence job's event: the scene frame it is about

    def __post_init__(self):
        if not 0.0 <= self.progress <= 1.0:
            raise JokerError(f"progress {self.progress} is outside 0..1", "report progress as a fraction")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ProgressEvent":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class JobStatus:
    """A job as the server reports it (GET /v1/jobs/{id})."""

    id: str
    state: JobState
    created_at: float
    priority: int = 0
    keep: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    stage: str = "queued"
    progress: float = 0.0
    eta_s: float | None = None
    prior_evaluations: int = 0
    nerf_steps: int = 0
    message: str = ""
    error: str | None = None            # why it failed / was interrupted, with the fix
    artifacts: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        data["artifacts"] = list(self.artifacts)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "JobStatus":
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["state"] = JobState(values["state"])
        values["artifacts"] = tuple(values.get("artifacts", ()))
        return cls(**values)


# -- sequences ---------------------------------------------------------------------------

MAX_FRAMES = 1000
_FRAME_FIELDS = ("preset", "rig", "prompt", "blender_views")
SEQUENCE_MANIFEST = "sequence.json"  # a sequence job's manifest artifact
SEQUENCE_GLB = "sequence.glb"  # a sequence job's animated object: the rig's topology, a morph target per frame
HEAD_GLB, RIG_HEAD_GLB = "head.glb", "head_rig.glb"  # a head: marching cubes, and the rig's topology


def frame_folder_name(number: int) -> str:
    """The folder of scene frame `number` among a sequence job's outputs (under frames/)."""
    return f"frame_{number:04d}"


def frame_artifact(number: int, name: str = "head.glb") -> str:
    """The artifact name of one file of scene frame `number`, e.g. frames/frame_0012/head.glb:
    listed by the server as soon as that frame is finished."""
    return f"frames/{frame_folder_name(number)}/{name}"


@dataclass(frozen=True)
class FrameSpec:
    """One frame of a sequence: its expression (a preset or rig parameters), its prompt
    (None: the sequence's shared one) and, from Blender, its own normal maps."""

    preset: str | None = None
    rig: RigParams | None = None
    prompt: str | None = None
    blender_views: tuple[BlenderView, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, path: str) -> "FrameSpec":
        data = _object(data, path)
        _no_unknown_keys(data, _FRAME_FIELDS, path)
        prompt = data.get("prompt")
        # The frame's fields are a JobSpec's: validate them by the one definition.
        job = JobSpec.from_dict({key: value for key, value in data.items() if value is not None}, path)
        return cls(preset=job.preset, rig=job.rig, prompt=None if prompt is None else job.prompt,
                   blender_views=job.blender_views)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rig"] = _rig_dict(self.rig)
        data["blender_views"] = [asdict(view) for view in self.blender_views]
        return data


@dataclass(frozen=True)
class SequenceSpec:
    """A keyframed sequence: shared settings (`job`: prompt, quality, prior, seed, device,
    views) and one FrameSpec per generated frame, numbered frame_start, +frame_step, ..."""

    job: JobSpec
    frames: tuple[FrameSpec, ...]
    frame_start: int = 1
    frame_step: int = 1
    per_frame_textures: bool = False  # sequence.glb also carries each frame's own texture (docs/rig_topology.md)

    @classmethod
    def from_dict(cls, data: Any, path: str = "spec") -> "SequenceSpec":
        data = _object(data, path)
        _no_unknown_keys(data, ("job", "frames", "frame_start", "frame_step", "per_frame_textures"), path)
        per_frame_textures = data.get("per_frame_textures", False)
        if not isinstance(per_frame_textures, bool):
            raise FieldError(f"{path}.per_frame_textures", f"expected true or false, got {_kind(per_frame_textures)}",
                             "send true or false")
        job = JobSpec.from_dict(data.get("job", {}), f"{path}.job")
        for name in ("preset", "rig", "blender_views"):
            if getattr(job, name):
                raise FieldError(f"{path}.job.{name}", "is per frame in a sequence",
                                 f"give {name} in each of {path}.frames[]")
        frames = data.get("frames")
        if not isinstance(frames, list) or not 1 <= len(frames) <= MAX_FRAMES:
            raise FieldError(f"{path}.frames", f"expected a list of 1 to {MAX_FRAMES} frames",
                             "send [{preset or rig, prompt?, blender_views?}, ...]")
        return cls(job=job,
                   frames=tuple(FrameSpec.from_dict(frame, f"{path}.frames[{i}]") for i, frame in enumerate(frames)),
                   frame_start=_integer(data.get("frame_start", 1), f"{path}.frame_start", -1_000_000, 1_000_000),
                   frame_step=_integer(data.get("frame_step", 1), f"{path}.frame_step", 1, 10_000),
                   per_frame_textures=per_frame_textures)

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job.to_dict(), "frames": [frame.to_dict() for frame in self.frames],
                "frame_start": self.frame_start, "frame_step": self.frame_step,
                **({"per_frame_textures": True} if self.per_frame_textures else {})}  # older readers: absent is off

    @property
    def device(self) -> str:
        return self.job.device

    @property
    def blender_views(self) -> tuple[BlenderView, ...]:
        """Every frame's Blender views, for the uploads a server must receive."""
        return tuple(view for frame in self.frames for view in frame.blender_views)

    def frame_number(self, index: int) -> int:
        return self.frame_start + index * self.frame_step

    def frame_job(self, index: int) -> JobSpec:
        """Frame `index` as a single-head job."""
        frame = self.frames[index]
        return replace(self.job, preset=frame.preset, rig=frame.rig, blender_views=frame.blender_views,
                       prompt=self.job.prompt if frame.prompt is None else frame.prompt)


def parse_spec(data: Any, path: str = "spec") -> JobSpec | SequenceSpec:
    """A job's spec as sent: a sequence when it has frames, else a single head."""
    if isinstance(data, Mapping) and "frames" in data:
        return SequenceSpec.from_dict(data, path)
    return JobSpec.from_dict(data, path)
