"""How faithful the mesh users get is: the exported geometry and baked texture rendered at
held-out views and compared with the prior's answer for the same views (only for priors
that render any view exactly: the projection prior, the fidelity oracle), next to the
field's renders of the same views; and how much its UV seams show.

- PSNR and SSIM (Gaussian window, sigma 1.5, as skimage's `structural_similarity` with
  `gaussian_weights=True, use_sample_covariance=False`) at `SIZE` px; the texture alone,
  unlit, as the prior's renders are.
- From behind (no training view looks there): a ghost of the face lowers it.
- Seams in the texture itself (`texel_seam_differences`): the colour a viewer reads on
  either side of each UV seam at the same surface points, against neighbouring texels
  inside a chart: a seam line is a jump in colour where the surface has none.
- Seams in a render: the mean colour difference between neighbouring pixels on touching triangles of
  different UV charts (across a seam), against the same within one chart (everywhere, and
  within `NEAR_SEAM` px of a seam: the same spot, away from the seam), each next to the
  prior's difference on the same pixel pairs (a seam that runs along a dark contour
  differs there in the picture too).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from joker_core.cameras import Camera, ViewRig

from ..distill.distiller import Distillation
from ..distill.rays import CameraSet
from ..distill.render import render_images
from ..mesh.bake import rasterize_uv
from ..mesh.cleanup import face_components
from ..mesh.export import TexturedMesh
from .job import PreparedJob
from .metrics import BACK_AZIMUTHS, HELD_OUT_VIEWS
from .turntable import render_unlit, view_mesh

SIZE = 256
SSIM_SIGMA, SSIM_RADIUS = 1.5, 5  # skimage: truncate 3.5 -> an 11-tap window
SSIM_C1, SSIM_C2 = 0.01 ** 2, 0.03 ** 2
HELD_OUT_SEED_OFFSET = 7919  # as metrics.held_out_psnr: the same random views
NEAR_SEAM = 4  # px: within-chart pairs this close to a seam pair are "near_seam"


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.float(), b.float()).item()
    return float("inf") if mse == 0 else float(-10.0 * np.log10(mse))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM of N x C x H x W images in [0, 1], over the pixels whose window lies inside."""
    taps = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (taps / SSIM_SIGMA) ** 2)
    kernel = kernel / kernel.sum()
    channels = a.shape[1]

    def blur(x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
        return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)

    a, b = a.double(), b.double()
    mean_a, mean_b = blur(a), blur(b)
    var_a = blur(a * a) - mean_a ** 2
    var_b = blur(b * b) - mean_b ** 2
    covariance = blur(a * b) - mean_a * mean_b
    index = ((2 * mean_a * mean_b + SSIM_C1) * (2 * covariance + SSIM_C2)
             / ((mean_a ** 2 + mean_b ** 2 + SSIM_C1) * (var_a + var_b + SSIM_C2)))
    return float(index.mean())


def held_out_cameras(job: PreparedJob, seed: int, size: int = SIZE) -> list[Camera]:
    grid, rig = job.preset.views, _rig(job, size)
    return rig.random(HELD_OUT_VIEWS, grid.azimuth_range, grid.elevation_range, seed=seed + HELD_OUT_SEED_OFFSET)


def back_cameras(job: PreparedJob, size: int = SIZE) -> list[Camera]:
    return [_rig(job, size).camera(azimuth, 0.0) for azimuth in BACK_AZIMUTHS]


def _rig(job: PreparedJob, size: int) -> ViewRig:
    return ViewRig(job.view_rig.center, job.view_rig.distance, job.view_rig.fov_deg, size)


def seam_differences(mesh: TexturedMesh, cameras: Sequence[Camera],
                     references: torch.Tensor | None = None) -> dict[str, float]:
    """Mean absolute colour difference (0..1, averaged over RGB) of horizontally and
    vertically neighbouring pixels on touching triangles (sharing a corner): "seam" where
    the triangles lie in different UV charts, "neighbour" within one chart, "near_seam"
    within one chart and within NEAR_SEAM px of a seam pair. With `references`
    (N x 3 x H x W, e.g. the prior's renders), the same pixel pairs there too
    ("reference_seam", ...): what the picture itself changes at those spots."""
    chart = torch.from_numpy(face_components(len(mesh.vertices), mesh.faces))
    corners = torch.from_numpy(mesh.welded_vertices()[mesh.faces])
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    pair_slices = (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                   ((slice(None, -1), slice(None)), (slice(1, None), slice(None))))
    for index, camera in enumerate(cameras):
        seen = view_mesh(mesh, camera)
        images = {"": seen.colour}
        if references is not None:
            images["reference_"] = references[index].permute(1, 2, 0)
        pairs = []  # per direction: (first, second, pair mask, touching, across)
        seam_pixels = np.zeros(seen.triangle_id.shape, bool)
        for first, second in pair_slices:
            face_a, face_b = seen.triangle_id[first], seen.triangle_id[second]
            pair = (face_a >= 0) & (face_b >= 0)
            face_a, face_b = face_a[pair], face_b[pair]
            touching = (corners[face_a][:, :, None] == corners[face_b][:, None, :]).flatten(1).any(1)
            across = chart[face_a] != chart[face_b]
            seam_pixels[first] |= _scatter(pair, touching & across)
            pairs.append((first, second, pair, touching, across))
        near = torch.from_numpy(ndimage.binary_dilation(seam_pixels, iterations=NEAR_SEAM))
        for first, second, pair, touching, across in pairs:
            kinds = (("seam", touching & across), ("neighbour", touching & ~across),
                     ("near_seam", touching & ~across & near[first][pair]))
            for prefix, image in images.items():
                difference = (image[first][pair] - image[second][pair]).abs().mean(-1)
                for kind, where in kinds:
                    sums[prefix + kind] = sums.get(prefix + kind, 0.0) + float(difference[where].sum())
                    counts[prefix + kind] = counts.get(prefix + kind, 0) + int(where.sum())
    return {key: sums[key] / max(counts[key], 1) for key in sums}


def texel_seam_differences(mesh: TexturedMesh, points_per_edge: int = 4) -> dict[str, float]:
    """Mean absolute colour difference (0..1, averaged over RGB): "texel_seam" between the
    texture's bilinear lookups on the two sides of every UV seam edge at the same surface
    points (`points_per_edge` evenly inside each edge, weighted by the edge's length; 0 for a
    seam that shows no line), and "texel_neighbour" between horizontally and vertically
    neighbouring texels inside the charts, two texels or more from a chart's border."""
    welded = mesh.welded_vertices()
    start, end = mesh.faces.ravel(), mesh.faces[:, [1, 2, 0]].ravel()  # half-edges, face by face
    key = np.sort(np.stack([welded[start], welded[end]], 1), axis=1)
    order = np.lexsort(key.T[::-1])
    twin = np.flatnonzero((key[order[1:]] == key[order[:-1]]).all(1))
    side_a, side_b = order[twin], order[twin + 1]
    split = (start[side_a] != end[side_b]) | (end[side_a] != start[side_b])  # the twin runs the other way
    side_a, side_b = side_a[split], side_b[split]
    t = torch.linspace(0, 1, points_per_edge + 2)[1:-1, None, None]
    uvs = torch.as_tensor(mesh.uvs, dtype=torch.float32)
    colour_a = mesh.colour_at((1 - t) * uvs[start[side_a]] + t * uvs[end[side_a]])
    colour_b = mesh.colour_at((1 - t) * uvs[end[side_b]] + t * uvs[start[side_b]])
    length = torch.as_tensor(np.linalg.norm(mesh.vertices[end[side_a]] - mesh.vertices[start[side_a]], axis=1))
    jump = (colour_a - colour_b).abs().mean((0, 2)).double()
    size = mesh.texture.shape[0]
    covered = np.zeros(size * size, bool)
    covered[rasterize_uv(mesh.uvs, mesh.faces, size, gutter=0).texel] = True
    inner = ndimage.binary_erosion(covered.reshape(size, size), iterations=2)
    texels = mesh.texture.astype(np.float32) / 255.0
    steps = [np.abs(texels[:, 1:] - texels[:, :-1]).mean(-1)[inner[:, 1:] & inner[:, :-1]],
             np.abs(texels[1:] - texels[:-1]).mean(-1)[inner[1:] & inner[:-1]]]
    return {"texel_seam": float((jump * length).sum() / length.sum().clamp(min=1e-12)),
            "texel_neighbour": float(np.concatenate(steps).mean())}


def _scatter(mask: torch.Tensor, values: torch.Tensor) -> np.ndarray:
    """A boolean image shaped like `mask`, true where `mask` is and `values` (one per true pixel) are."""
    image = torch.zeros(mask.shape, dtype=torch.bool)
    image[mask] = values
    return image.numpy()


def _field_images(job: PreparedJob, result: Distillation, cameras: Sequence[Camera]) -> torch.Tensor:
    return render_images(result.field, CameraSet(cameras, job.device), range(len(cameras)), cameras[0].width,
                         job.preset.samples_per_ray, occupancy=result.occupancy).cpu().clamp(0, 1)


def mesh_fidelity(job: PreparedJob, result: Distillation, mesh: TexturedMesh, seed: int,
                  with_field: bool = False) -> dict[str, float]:
    """The mesh's figures (a few seconds), and with `with_field` the field's on the same
    views at the same size (7 field renders at 256 px: benchmarks); empty for a prior that
    cannot render any view."""
    render = getattr(job.prior, "render", None)
    if render is None:
        return {}
    background = tuple(getattr(job.prior, "background", (1.0, 1.0, 1.0)))
    asked = job.condition.rig_vertices  # what the prior was asked to show (the posed rig)
    figures: dict[str, float] = {}
    seam_cameras, seam_references = [], []
    for name, cameras in (("", held_out_cameras(job, seed)), ("back_", back_cameras(job))):
        expected = render(asked, cameras).cpu()
        mesh_images = render_unlit(mesh, cameras, background)
        figures[f"mesh_{name}psnr_db"] = psnr(mesh_images, expected)
        figures[f"mesh_{name}ssim"] = ssim(mesh_images, expected)
        if with_field:
            field_images = _field_images(job, result, cameras)
            figures[f"field_{name}psnr_{SIZE}px_db"] = psnr(field_images, expected)
            figures[f"field_{name}ssim_{SIZE}px"] = ssim(field_images, expected)
        seam_cameras += cameras
        seam_references.append(expected)
    seams = seam_differences(mesh, seam_cameras, torch.cat(seam_references))
    seams.update(texel_seam_differences(mesh))
    figures.update({f"mesh_{key}_difference": value for key, value in seams.items()})
    return figures
