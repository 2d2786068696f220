"""From a JobSpec and a photo to what the distillation needs: the posed rig, the views
with their normal maps, the prior and its condition, the device and the head's volume."""

from __future__ import annotations

import dataclasses
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from joker_core.cameras import Camera, ViewRig
from joker_core.conventions import decode_normals, encode_normals
from joker_core.errors import JokerError
from joker_core.framing import bounding_sphere, head_view_rig
from joker_core.head_model import HeadModel, load_model
from joker_core.lbs import numpy_rig, pose
from joker_core.protocol import JobSpec
from joker_core.rig_params import RigParams

from ..devices import choose_device
from ..box import Box
from ..distill.rig_views import RigGeometry, rig_views
from ..distill.schedule import Preset, preset as quality_preset
from ..fit.diffusion_inputs import framed_views, reference_crop
from ..fit.jobs import job_fit, job_params
from ..fit.solve import ReferenceFit
from ..prior.base import Condition, Prior, Views
from ..render.head_views import render_head

log = logging.getLogger(__name__)


@dataclass
class PreparedJob:
    spec: JobSpec
    model: HeadModel
    params: RigParams
    posed_vertices: np.ndarray  # N x 3, FLAME frame
    photo: np.ndarray           # H x W x 3 uint8
    device: torch.device
    preset: Preset
    view_rig: ViewRig
    views: Views
    condition: Condition
    prior: Prior
    box: Box
    rig: RigGeometry | None  # weak geometric supervision, when the preset asks for it
    fit: ReferenceFit | None = None  # the reference photo's, when it was fitted


def rig_params(spec: JobSpec, model: HeadModel, fit: ReferenceFit | None = None) -> RigParams:
    """`fit`: the reference photo's; the rig wears its identity unless the job sets shape."""
    if spec.preset is not None:
        from joker_core.presets import get_preset
        return job_params(spec, get_preset(spec.preset).params_for(model), fit)
    return job_params(spec, (spec.rig or RigParams()).validated(model), fit)


def _preset_for(spec: JobSpec, override: Preset | None) -> Preset:
    preset = override or quality_preset(spec.quality)
    views = spec.views
    grid = preset.views
    if views.grid is not None:
        grid = dataclasses.replace(grid, azimuths=views.grid[0], elevations=views.grid[1])
    grid = dataclasses.replace(grid, azimuth_range=views.azimuth_range, elevation_range=views.elevation_range,
                               size=views.size or grid.size)
    return dataclasses.replace(preset, views=grid)


def _training_views(spec: JobSpec, preset: Preset, view_rig: ViewRig, model: HeadModel, params: RigParams,
                    inputs_dir: Path, normal_mode: str) -> Views:
    """Blender's views when the job brings them, else the preset's grid rendered here;
    either way with the posed rig's full-head silhouettes (Blender's maps may be face-only)."""
    if spec.blender_views:
        cameras = [Camera.from_dict(view.camera) for view in spec.blender_views]
    elif spec.views.count is not None:
        cameras = ViewRig(view_rig.center, view_rig.distance, view_rig.fov_deg, preset.views.size).random(
            spec.views.count, spec.views.azimuth_range, spec.views.elevation_range, seed=spec.seed)
    else:
        cameras = preset.views.cameras(view_rig)
    if spec.prior.name == "joker" and not spec.blender_views:  # framed as its training faces were
        cameras = framed_views(cameras, model, params)
    full = render_head(model, params, cameras, mode="full")
    silhouettes = torch.stack([m.mask[None].float() for m in full])
    if spec.blender_views:
        normal_maps = [_read_normal_map(inputs_dir / view.normal_map, camera)
                       for view, camera in zip(spec.blender_views, cameras)]
    else:
        chosen = full if normal_mode == "full" else render_head(model, params, cameras, mode=normal_mode)
        normal_maps = [m.as_image() for m in chosen]
    return Views(cameras, torch.stack(normal_maps), silhouettes)


def _read_normal_map(path: Path, camera: Camera) -> torch.Tensor:
    try:
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise JokerError(f"normal map {path.name} cannot be read ({exc})",
                         "send PNG normal maps as rendered by the add-on") from exc
    if rgb.shape[:2] != (camera.height, camera.width):
        raise JokerError(f"normal map {path.name} is {rgb.shape[1]}x{rgb.shape[0]} but its camera is "
                         f"{camera.width}x{camera.height}", "send each normal map at its camera's size")
    normals, mask = decode_normals(rgb)  # re-encode: the prior sees exactly the shared encoding
    return torch.from_numpy(encode_normals(normals, mask)).permute(2, 0, 1).float() / 255.0


def open_prior(spec: JobSpec, photo: np.ndarray, model: HeadModel, params: RigParams,
               device: torch.device, fit: ReferenceFit | None = None) -> Prior:
    """The job's prior. The projection prior textures the head posed as the `fit` says,
    else (explicit alignment, no embedding) the head with its identity aligned by the eyes."""
    if spec.prior.name == "projection":
        from ..prior.projection.alignment import AlignmentHints
        from ..prior.projection.prior import ProjectionPrior
        if fit is not None:
            return ProjectionPrior.from_fit(photo, model, fit)
        neutral = pose(numpy_rig(model), RigParams(shape=params.shape)).vertices
        return ProjectionPrior.from_photo(photo, model, neutral, AlignmentHints.from_dict(spec.alignment or {}))
    from ..prior.diffusion.loading import open_prior as open_diffusion_prior
    optional = [Path(p) if p else None for p in (spec.prior.sd15, spec.prior.vae)]
    return open_diffusion_prior(Path(spec.prior.weights), *optional, device=str(device))


def prepare(reference: np.ndarray, spec: JobSpec, inputs_dir: Path,
            preset_override: Preset | None = None, prior: Prior | None = None,
            fit: ReferenceFit | None = None) -> PreparedJob:
    """`prior` and `fit`: those already made for this photo (a sequence's frames share them)."""
    device = choose_device(spec.device)
    model = load_model(spec.model)
    fit = fit or job_fit(spec, reference, model)
    params = rig_params(spec, model, fit)
    posed = pose(numpy_rig(model), params).vertices
    preset = _preset_for(spec, preset_override)
    view_rig = head_view_rig(model, size=preset.views.size)
    # The official diffusion prior was trained on face-region normal maps; the projection
    # prior ignores them, and full-head masks then give the field its silhouette.
    normal_mode = "face" if spec.prior.name == "joker" else "full"
    views = _training_views(spec, preset, view_rig, model, params, inputs_dir, normal_mode)
    log.info("prepared %d views of %s at %d px on %s", len(views), model.name, preset.views.size, device)
    prior = prior or open_prior(spec, reference, model, params, device, fit)
    # The diffusion prior takes the reference as the published crop; the projection prior reads the photo itself.
    seen = reference_crop(reference, fit, model, preset.views.size) if spec.prior.name == "joker" else reference
    condition = Condition(reference=torch.tensor(seen).permute(2, 0, 1)[None].float() / 255.0,
                          prompt=spec.prompt, negative_prompt=spec.negative_prompt,
                          rig_vertices=torch.from_numpy(posed).float())
    centre, radius = bounding_sphere(np.concatenate([model.v_template, posed]))
    rig = _rig_geometry(preset, view_rig, views, model, posed, prior)
    return PreparedJob(spec, model, params, posed, reference, device, preset, view_rig, views, condition, prior, Box.around(centre, radius), rig,
                       fit)


def _rig_geometry(preset: Preset, view_rig: ViewRig, views: Views, model: HeadModel, posed: np.ndarray,
                  prior: Prior) -> RigGeometry | None:
    """The posed rig on the training views and from all around. A prior that renders any
    view (the projection prior) colours the orbit views too: the back of the head is in no
    training view, and without it the field's colour there would be whatever the optimiser
    left. The diffusion prior cannot, so there the back's colour is the field's guess."""
    if not preset.rig.rays:
        return None
    orbit = rig_views(posed, model.faces, preset.rig.cameras(view_rig), prior.view_renderer)
    return RigGeometry(rig_views(posed, model.faces, views.cameras), orbit)
