"""The projection prior on the astronaut portrait and the demo head: how well it aligns,
how faithfully it reproduces the photo, and what it costs.

    .venv/bin/python benchmarks/bench_projection.py [--out DIR] [--threads N]

Prints: eye residual (px) of the fit, PSNR of the neutral render from the photo's camera
against the photo inside the face mask (and with the camera shifted by 4 px, to show the
figure measures alignment), the share of texels from the photo / mirror / fill, and wall
times for alignment, baking per texture size and rendering per view size. With --out it
writes the overlay, texture, provenance map and a strip of views (neutral and "scream")
as PNGs, to look at.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch

from joker.prior.projection.alignment import align_photo, rig_landmarks
from joker.prior.projection.head_surface import surface_from_head
from joker.prior.projection.prior import ProjectionPrior
from joker.prior.projection.texture import Origin, bake_texture
from joker.render.raster import interpolate, rasterize, world_to_camera
from joker_core.cameras import Camera, ViewRig
from joker_core.demo_head import load_demo_head
from joker_core.files import atomic_write_bytes
from joker_core.lbs import numpy_rig, pose
from joker_core.png import encode_png
from joker_core.presets import get_preset

ORIGIN_COLOURS = {Origin.OUTSIDE: (0, 0, 0), Origin.PHOTO: (255, 255, 255), Origin.MIRROR: (60, 90, 255),
                  Origin.MOUTH: (200, 30, 30), Origin.FILL: (40, 200, 80)}


@dataclasses.dataclass(frozen=True)
class Cost:
    wall_s: float
    cpu_s: float  # process CPU time: on a shared, loaded machine the steadier figure

    def __str__(self) -> str:
        return f"{self.wall_s * 1000:.0f} ms wall / {self.cpu_s * 1000:.0f} ms CPU"


def timed(function, *args, repeat: int = 1, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        result = function(*args, **kwargs)
    return result, Cost((time.perf_counter() - wall) / repeat, (time.process_time() - cpu) / repeat)


def face_psnr(prior: ProjectionPrior, photo: np.ndarray, camera: Camera, face: np.ndarray) -> float:
    render = prior.render(prior.surface.vertices, [camera])[0].permute(1, 2, 0).numpy()
    return float(-10 * np.log10(np.mean((render[face] - photo[face] / 255.0) ** 2)))


def face_mask(prior: ProjectionPrior, camera: Camera) -> np.ndarray:
    """Pixels of the rig's face region that the photo's face ellipse covers."""
    rows, cols = np.mgrid[0:camera.height, 0:camera.width] + 0.5
    in_ellipse = prior.alignment.face.contains(np.stack([cols.ravel(), rows.ravel()], 1))
    vertices = torch.as_tensor(prior.surface.vertices, dtype=torch.float32)
    faces = torch.as_tensor(prior.surface.faces)
    fragments = rasterize(world_to_camera(vertices, camera), faces, camera)
    trusted = torch.as_tensor(prior.surface.trusted_vertices, dtype=torch.float32)[:, None]
    in_region = ((interpolate(trusted, faces, fragments)[..., 0] > 0.5) & fragments.mask).numpy()
    return in_region & in_ellipse.reshape(in_region.shape)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def overlay(photo: np.ndarray, prior: ProjectionPrior, head) -> np.ndarray:
    """Render blended over the photo; rig landmarks red, detected eyes green."""
    camera = prior.alignment.camera
    render = prior.render(prior.surface.vertices, [camera])[0].permute(1, 2, 0).numpy()
    image = to_uint8(0.5 * render + 0.5 * photo / 255.0)
    marks = [(p, (255, 0, 0)) for p in camera.project(prior.surface.vertices[list(head.landmarks.values())])[0]]
    if prior.alignment.detection is not None and prior.alignment.detection.eyes is not None:
        marks += [(p, (0, 255, 0)) for p in prior.alignment.detection.eyes]
    for (x, y), colour in marks:
        image[max(int(y) - 1, 0):int(y) + 2, max(int(x) - 1, 0):int(x) + 2] = colour
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for the PNGs to look at")
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    photo = skimage.data.astronaut()
    head = load_demo_head()
    surface = surface_from_head(head)
    alignment, align_cost = timed(align_photo, photo, rig_landmarks(head, surface.vertices))
    detected = alignment.detection.eyes
    fitted, _ = alignment.camera.project(surface.vertices[[head.landmarks["eye_left"], head.landmarks["eye_right"]]])
    eye_error = np.linalg.norm(fitted[np.argsort(fitted[:, 0])] - detected, axis=1)
    print(f"photo: astronaut {photo.shape[1]}x{photo.shape[0]}, head: {head.name} "
          f"({head.n_vertices} vertices, {len(head.faces)} faces)")
    print(f"alignment: {align_cost}, eye landmark error {eye_error.max():.2f} px "
          f"(interocular {np.linalg.norm(detected[1] - detected[0]):.1f} px), fit RMS {alignment.residual_px:.2f} px")

    for size in (256, 512, 1024):
        texture, bake_cost = timed(bake_texture, surface, photo, alignment.camera, size, alignment.face.contains)
        origin = texture.origin[texture.origin != Origin.OUTSIDE]
        shares = ", ".join(f"{kind.name.lower()} {np.mean(origin == kind) * 100:.0f}%"
                           for kind in (Origin.PHOTO, Origin.MIRROR, Origin.MOUTH, Origin.FILL))
        prior = ProjectionPrior(surface, texture, alignment=alignment)
        face = face_mask(prior, alignment.camera)
        shifted = dataclasses.replace(alignment.camera, cx=alignment.camera.cx + 4)
        print(f"texture {size}: bake {bake_cost}; texels {shares}; face PSNR "
              f"{face_psnr(prior, photo, alignment.camera, face):.1f} dB "
              f"(camera shifted 4 px: {face_psnr(prior, photo, shifted, face):.1f} dB) over {face.sum()} px")

    scream = pose(numpy_rig(head), get_preset("scream").params_for(head)).vertices
    for size in (64, 128, 256, 512):
        cameras = ViewRig(distance=0.7, fov_deg=30, size=size).grid(4, 1)
        _, render_cost = timed(prior.render, scream, cameras)
        per_view = Cost(render_cost.wall_s / len(cameras), render_cost.cpu_s / len(cameras))
        print(f"render {size}px: {per_view} per view")

    if args.out:
        rig = ViewRig(distance=0.7, fov_deg=30, size=256)
        cameras = [rig.camera(a, e) for a, e in ((-60, 0), (-30, 10), (0, 0), (30, -10), (60, 0), (180, 0))]
        strips = [torch.cat(list(prior.render(v, cameras)), 2) for v in (surface.vertices, scream)]
        images = {
            "overlay.png": overlay(photo, prior, head),
            "texture.png": to_uint8(prior.texture.image),
            "texture_origin.png": np.array([ORIGIN_COLOURS[Origin(o)] for o in range(5)], np.uint8)[prior.texture.origin],
            "views_neutral_scream.png": to_uint8(torch.cat(strips, 1).permute(1, 2, 0).numpy()),
        }
        for name, image in images.items():
            atomic_write_bytes(args.out / name, encode_png(image))
        print(f"wrote {', '.join(images)} to {args.out}")


if __name__ == "__main__":
    main()
