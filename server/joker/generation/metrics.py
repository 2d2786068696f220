"""How faithful a result is, measured against what it was asked to be.

- Held-out PSNR: field renders vs the prior's answer on views NOT used as targets (only for
  priors that can render any view exactly: the projection prior, the fidelity oracle); and
  the same from behind, where no training view looks.
- Face Chamfer distance between the extracted mesh and the posed rig over the face region,
  in metres and in % of the head's height; once over all its vertices, once over those some
  training view sees (eyeballs behind the lids and the inside of the mouth are in the face
  region, ~26% of it for the screaming demo head, but no picture shows them).
- Mouth opening: along the lips' vertical line seen from the front, the length over which
  the surface lies more than 1 cm behind the lips, for the rig and for the mesh.
- Identity: dlib's face-descriptor distance between the reference photo and a frontal
  render of the mesh's texture (< 0.6: dlib's "same person"; joker.fit.identity).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree

from joker_core.cameras import Camera, ViewRig
from joker_core.face_region import face_region
from joker_core.head_model import HeadModel

from ..distill import losses
from ..distill.distiller import Distillation
from ..distill.rays import CameraSet
from ..distill.render import render_images
from ..fit.identity import frontal_camera, render_identity_distance
from ..mesh.export import TexturedMesh
from ..render.raster import rasterize, world_to_camera
from .job import PreparedJob
from .turntable import render_unlit

HELD_OUT_VIEWS = 4
HELD_OUT_SIZE = 128
BACK_AZIMUTHS = (150.0, 180.0, 210.0)  # degrees; the face looks along azimuth 0
MOUTH_DEPTH = 0.01  # metres behind the lips that count as "inside the open mouth"
IDENTITY_SIZE = 256  # px: the face then spans ~200 px, above dlib's 150 px face chips
VISIBLE_DEPTH = 0.002  # metres a vertex may lie behind the nearest surface and still count as seen


def held_out_psnr(job: PreparedJob, result: Distillation, seed: int) -> float | None:
    grid = job.preset.views
    cameras = _metric_rig(job).random(HELD_OUT_VIEWS, grid.azimuth_range, grid.elevation_range, seed=seed + 7919)
    return _psnr_against_prior(job, result, cameras)


def back_psnr(job: PreparedJob, result: Distillation) -> float | None:
    """PSNR of the back of the head (no training view sees it) against the prior's render:
    where a ghost of the face shows, the tri-plane let front colours leak behind."""
    cameras = [_metric_rig(job).camera(azimuth, 0.0) for azimuth in BACK_AZIMUTHS]
    return _psnr_against_prior(job, result, cameras)


def _metric_rig(job: PreparedJob) -> ViewRig:
    return ViewRig(job.view_rig.center, job.view_rig.distance, job.view_rig.fov_deg, HELD_OUT_SIZE)


def _psnr_against_prior(job: PreparedJob, result: Distillation, cameras: Sequence[Camera]) -> float | None:
    """Field renders vs the prior's (None for a prior that cannot render any view)."""
    render = job.prior.view_renderer
    if render is None:
        return None
    fitted = render_images(result.field, CameraSet(cameras, job.device), range(len(cameras)), HELD_OUT_SIZE,
                           job.preset.samples_per_ray, occupancy=result.occupancy).cpu()
    expected = render(torch.from_numpy(job.posed_vertices).float(), cameras).cpu()
    return losses.psnr(fitted.clamp(0, 1), expected)


def head_height(model: HeadModel) -> float:
    return float(np.ptp(model.v_template[:, 1]))


def face_chamfer(mesh_vertices: np.ndarray, model: HeadModel, posed: np.ndarray,
                 cameras: Sequence[Camera]) -> dict[str, float]:
    """Chamfer distance over the face region, and over its part that `cameras` see."""
    region = face_region(model)
    visible = region & seen_vertices(posed, model.faces, cameras)
    figures = {}
    for suffix, vertices in (("", region), ("_visible", visible)):
        chamfer = _chamfer(mesh_vertices, posed, vertices)
        figures[f"face_chamfer{suffix}_m"] = chamfer
        figures[f"face_chamfer{suffix}_percent_of_head_height"] = 100.0 * chamfer / head_height(model)
    return figures


def _chamfer(mesh_vertices: np.ndarray, posed: np.ndarray, region: np.ndarray) -> float:
    """Symmetric mean distance between the mesh and the rig's `region` vertices; mesh
    vertices count where their nearest rig vertex is in the region."""
    to_mesh, _ = cKDTree(mesh_vertices).query(posed[region])
    to_rig, nearest = cKDTree(posed).query(mesh_vertices)
    on_region = region[nearest]
    return float(0.5 * (to_mesh.mean() + (to_rig[on_region].mean() if on_region.any() else np.inf)))


def seen_vertices(vertices: np.ndarray, faces: np.ndarray, cameras: Sequence[Camera]) -> np.ndarray:
    """N bools: the vertex is on the nearest surface of its pixel in at least one camera."""
    seen = np.zeros(len(vertices), dtype=bool)
    points, triangles = torch.as_tensor(vertices, dtype=torch.float32), torch.as_tensor(faces, dtype=torch.int64)
    for camera in cameras:
        fragments = rasterize(world_to_camera(points, camera), triangles, camera)
        pixels, depth = camera.project(vertices)
        col = np.clip(np.floor(pixels[:, 0]).astype(int), 0, camera.width - 1)
        row = np.clip(np.floor(pixels[:, 1]).astype(int), 0, camera.height - 1)
        nearest = fragments.depth.numpy()[row, col]
        seen |= fragments.mask.numpy()[row, col] & (depth <= nearest + VISIBLE_DEPTH)
    return seen


def lip_line(model: HeadModel, posed: np.ndarray) -> np.ndarray | None:
    """The posed rig's upper and lower lip points (2 x 3), or None if the model names no lips."""
    if not {"upper_lip", "lower_lip"} <= model.landmarks.keys():
        return None
    return posed[[model.landmarks["upper_lip"], model.landmarks["lower_lip"]]]


def mouth_opening(vertices: np.ndarray, faces: np.ndarray, lips: np.ndarray | None, size: int = 256) -> float | None:
    """Open length (metres) of the mouth of a surface (`vertices`, `faces`), measured along
    the line between the lips (lip_line); None without lips."""
    if lips is None:
        return None
    upper, lower = lips
    centre = 0.5 * (upper + lower)
    camera = ViewRig(tuple(centre), 0.5, 20.0, size).camera(0.0, 0.0)
    fragments = rasterize(world_to_camera(torch.as_tensor(vertices, dtype=torch.float32), camera),
                          torch.as_tensor(faces, dtype=torch.int64), camera)
    pixels, lip_depth = camera.project(np.stack([upper, lower]))
    span = abs(pixels[1, 1] - pixels[0, 1])
    top, bottom = (int(max(0, min(pixels[:, 1]) - span)), int(min(size, max(pixels[:, 1]) + span + 1)))
    column = int(round(pixels[:, 0].mean()))
    depth, hit = fragments.depth[top:bottom, column].numpy(), fragments.mask[top:bottom, column].numpy()
    deep = hit & (depth > lip_depth.mean() + MOUTH_DEPTH)
    metres_per_pixel = lip_depth.mean() / camera.fy
    return float(deep.sum() * metres_per_pixel)


def identity_distance(job: PreparedJob, mesh: TexturedMesh) -> float | None:
    """Descriptor distance between the photo and the mesh seen from the front, unlit (the
    texture carries the photo's own shading); None where dlib finds no face in either."""
    render = render_unlit(mesh, [frontal_camera(mesh.vertices, IDENTITY_SIZE)])[0]
    image = (render.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return render_identity_distance(job.photo, image, None if job.fit is None else job.fit.landmarks)
