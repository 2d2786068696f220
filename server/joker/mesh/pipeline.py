"""One call from field callables to a textured mesh: grid -> surface -> cleanup -> atlas ->
texture, with the counts and the time each stage took (export.write_mesh_files writes it)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
import trimesh

from joker_core.cameras import Camera
from joker_core.errors import JokerError

from ..box import Box
from ..render.normal_maps import vertex_normals
from . import cleanup
from .bake import GUTTER, MAX_GUTTER, bake_texture
from .export import TexturedMesh
from .extract import blur_grid, check_grid, marching_cubes, sample_density_grid
from .fields import ColorField, DensityField
from .project import project_views
from .rig_prior import RigSurface, onto_rig
from .unwrap import check_texture_size, unwrap

CHARTINGS = ("head", "xatlas")
MAX_GRID_BLUR = 4.0
MAX_RIG_TOLERANCE = 4.0


@dataclass(frozen=True)
class MeshSettings:
    """Knobs of the mesh stage; the defaults fit 256^3 + 1024^2 into ~10 s on a 2-core CPU."""

    resolution: int = 256            # grid cells per axis
    iso_level: float = 25.0          # density at the surface (threestudio's default for NeRF densities)
    texture_size: int = 1024         # square base-colour texture, texels per side
    face_budget: int = 20_000        # ~2x FLAME's face count; xatlas time grows fast beyond it
    coarse_stride: int = 4           # 1 samples the full grid; see extract.sample_density_grid
    min_component_fraction: float = 1.0  # 1.0 keeps only the largest connected part
    chunk_size: int = 1 << 18        # points per field call
    device: str = "cpu"              # where field callables receive their points
    charts: str = "head"             # "head": few large charts, seams behind the face; "xatlas": its own (hundreds)
    smoothing: int = 0               # Taubin iterations (docs/mesh.md: 3-10 look cleaner but cost seams and the back)
    grid_blur: float = 0.75          # Gaussian sigma in grid cells: fills the field's sub-voxel crevices (docs/mesh.md)
    shading_smoothing: int = 10      # Taubin iterations of the copy the exported normals come from (docs/mesh.md)
    fill_unseen: bool = True         # where no view looks: the seen colours' fill; False: the field's (its ghost of the face)
    texture_gutter: float = GUTTER   # texels around each chart coloured from its extended surface (bake.py); 0: none
    rig_tolerance: float = 1.0       # grid cells within which the surface is taken as the posed rig's (rig_prior.py); 0: off

    def __post_init__(self) -> None:
        check_grid(self.resolution, self.coarse_stride)
        check_texture_size(self.texture_size)
        cleanup.check_face_budget(self.face_budget)
        cleanup.check_component_fraction(self.min_component_fraction)
        if self.charts not in CHARTINGS:
            raise JokerError(f"charting {self.charts!r} is not one of {', '.join(CHARTINGS)}",
                             "use 'head' (few charts, seams away from the face) or 'xatlas'")
        if self.smoothing < 0 or self.shading_smoothing < 0:
            raise JokerError(f"smoothing {self.smoothing} / shading smoothing {self.shading_smoothing} is negative",
                             "use 0 (none) or e.g. 10 iterations")
        if not 0 <= self.grid_blur <= MAX_GRID_BLUR:
            raise JokerError(f"grid blur {self.grid_blur} is outside 0..{MAX_GRID_BLUR} grid cells",
                             "use 0 (none) or e.g. 0.75")
        if not 0 <= self.texture_gutter <= MAX_GUTTER:
            raise JokerError(f"texture gutter {self.texture_gutter} is outside 0..{MAX_GUTTER} texels",
                             f"use 0 (none) or {GUTTER} (a bilinear lookup's reach)")
        if not 0 <= self.rig_tolerance <= MAX_RIG_TOLERANCE:
            raise JokerError(f"rig tolerance {self.rig_tolerance} is outside 0..{MAX_RIG_TOLERANCE} grid cells",
                             "use 0 (the field's surface as it is) or 1 (the field's own precision)")
        if not math.isfinite(self.iso_level):
            raise JokerError(f"iso level {self.iso_level} is not a finite number",
                             "pass the density at which the surface lies, e.g. 25")

    def rig_surface(self, vertices: np.ndarray, faces: np.ndarray, box: Box) -> RigSurface:
        """The posed rig as this mesh's prior, its tolerance one `rig_tolerance` of grid cells."""
        return RigSurface(np.asarray(vertices, np.float64), np.asarray(faces, np.int64),
                          self.rig_tolerance * box.size / self.resolution)


@dataclass
class MeshStats:
    marching_cubes_faces: int = 0
    faces: int = 0
    vertices: int = 0
    charts: int = 0
    watertight: bool = False
    volume_m3: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)      # wall time per stage
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # process CPU time per stage

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.seconds[stage] = time.perf_counter() - wall
        self.cpu_seconds[stage] = time.process_time() - cpu

    def as_dict(self) -> dict:
        return asdict(self)


def shading_normals(vertices: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """V x 3 unit normals of a Taubin-smoothed copy of the surface: the distilled surface
    keeps creases a triangle or two wide (the field's noise, folds left by decimation),
    whose vertex normals turn sideways and draw thin dark lines under any light. Shading
    from the smoothed copy drops them; the geometry (outline, texture) stays as it is."""
    smoothed = cleanup.smooth(vertices, faces, iterations)
    return vertex_normals(torch.from_numpy(smoothed), torch.from_numpy(faces)).numpy()


def build_textured_mesh(density: DensityField, color: ColorField, box: Box,
                        settings: MeshSettings = MeshSettings(),
                        stats: MeshStats | None = None,
                        views: tuple[Sequence[Camera], torch.Tensor] | None = None,
                        rig: RigSurface | None = None) -> TexturedMesh:
    """The textured surface of `density` at `settings.iso_level`, coloured by `color`, and
    by `views` (cameras, N x 3 x H x W images: the distillation's final targets) wherever
    they see it (project.py); within `rig`'s tolerance of the posed rig, the rig's surface."""
    stats = stats if stats is not None else MeshStats()
    field_options = dict(chunk_size=settings.chunk_size, device=settings.device)
    with stats.timed("density grid"):
        grid = sample_density_grid(density, box, settings.resolution, iso_level=settings.iso_level,
                                   coarse_stride=settings.coarse_stride, **field_options)
        grid = blur_grid(grid, settings.grid_blur)
    with stats.timed("marching cubes"):
        vertices, faces = marching_cubes(grid, settings.iso_level, box)
    with stats.timed("cleanup"):
        stats.marching_cubes_faces = len(faces)
        vertices, faces = cleanup.keep_large_components(vertices, faces, settings.min_component_fraction)
        vertices, faces = cleanup.decimate(vertices, faces, settings.face_budget)
        vertices, faces = cleanup.close_surface(vertices, faces)
        # Closing may cut off slivers that hung on by a pinched edge.
        vertices, faces = cleanup.keep_large_components(vertices, faces, settings.min_component_fraction)
        faces = cleanup.orient_outward(vertices, faces)
    if rig is not None:
        with stats.timed("onto rig"):
            vertices = onto_rig(vertices, faces, rig)
    stats.watertight = bool(trimesh.Trimesh(vertices, faces, process=False).is_watertight)
    stats.volume_m3 = cleanup.signed_volume(vertices, faces)
    with stats.timed("unwrap"):
        centre = np.asarray(box.center) if settings.charts == "head" else None
        uv_mesh = unwrap(vertices, faces, settings.texture_size, centre=centre)
    with stats.timed("bake"):
        texture = bake_texture(uv_mesh, color, settings.texture_size, gutter=settings.texture_gutter,
                               **field_options)
    stats.faces, stats.vertices, stats.charts = len(uv_mesh.faces), len(uv_mesh.vertices), uv_mesh.chart_count
    # Smoothed after the bake (the field's colours belong to its own surface), before the
    # projection (the views' colours land where users will see the surface).
    with stats.timed("smooth"):
        smoothed = cleanup.smooth(vertices, faces, settings.smoothing)
        uv_mesh = dataclasses.replace(uv_mesh, vertices=smoothed[uv_mesh.source_vertex])
        shading = shading_normals(smoothed, faces, settings.shading_smoothing)
    mesh = TexturedMesh.from_uv_mesh(uv_mesh, shading, texture)
    if views is not None:
        with stats.timed("project"):
            mesh = project_views(mesh, *views, fill_unseen=settings.fill_unseen, gutter=settings.texture_gutter)
    return mesh
