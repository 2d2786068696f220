"""The published reference crop and view framing (design.md §2).

The authors' preprocessing (Deep3DFaceRecon's `align_img` as the Joker repository calls it):
five points (eye centres, nose tip, mouth corners) are matched to a 3D template by a least
squares affine camera; its mean row norm is the face's scale and its translation where the
template's origin lands. The photo is scaled so that the face measures RESCALE, a
TARGET-pixel square is cut around that point, then its central CENTRE_CROP pixels are
resized to OUTPUT (LANCZOS). Parts of the square outside the photo are black. There is no
rotation: a tilted face stays tilted. Integer truncations are kept where the authors have
them (resized image size, square corner), so the crop lands on the same pixels.

Here the two resamplings are one: the output's source box in the photo is computed and
resampled once (PIL LANCZOS over that box), which keeps any photo size cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from joker_core.cameras import Camera
from joker_core.errors import JokerError

# Deep3DFaceRecon's five-point 3D template (from BFM09's similarity_Lm3D_all.mat, as its
# load_lm3d reduces it): image-left eye, image-right eye, nose tip, mouth left, mouth right;
# x right, y up.
TEMPLATE = np.array([[-0.31148657, 0.29036078, 0.13377953],
                     [0.30979887, 0.28972036, 0.13179526],
                     [0.0032535, -0.04617932, 0.55244243],
                     [-0.25216928, -0.38133916, 0.22405732],
                     [0.2484662, -0.38128236, 0.22235769]])
TARGET, RESCALE, CENTRE_CROP, OUTPUT = 1024, 300.0, 700, 512


@dataclass(frozen=True)
class CropFrame:
    """photo pixel (x, y) -> crop pixel: scale * (x, y) - offset (continuous coordinates,
    pixel edges at integers)."""

    scale_x: float
    scale_y: float
    offset: np.ndarray  # 2
    size: int = OUTPUT

    def to_crop(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(pixels, float) * (self.scale_x, self.scale_y) - self.offset

    def source_box(self) -> tuple[float, float, float, float]:
        x0, y0 = self.offset / (self.scale_x, self.scale_y)
        return x0, y0, x0 + self.size / self.scale_x, y0 + self.size / self.scale_y


def five_points(landmarks_68: np.ndarray) -> np.ndarray:
    """The template's five points from 68 (pixel coordinates, top-left origin)."""
    points = np.asarray(landmarks_68, float)
    return np.stack([points[36:42:3].mean(0), points[42:48:3].mean(0), points[30], points[48], points[54]])


def crop_frame(points: np.ndarray, width: int, height: int) -> CropFrame:
    """Where the published crop of a width x height photo lies, from its five points
    (TEMPLATE order, pixel coordinates with a top-left origin)."""
    points = np.asarray(points, float)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise JokerError("the crop needs five finite (x, y) points", "give eye centres, nose tip and mouth corners")
    up = np.stack([points[:, 0], height - 1 - points[:, 1]], 1)  # the authors fit with y up
    scale, centre = _affine_camera(up)
    s = RESCALE / scale
    resized_w, resized_h = int(width * s), int(height * s)
    if min(resized_w, resized_h) < 1:
        raise JokerError("the face in the photo is too large to crop", "use a photo where the face is smaller")
    left = int(resized_w / 2 - TARGET / 2 + (centre[0] - width / 2) * s)
    top = int(resized_h / 2 - TARGET / 2 + (height / 2 - centre[1]) * s)
    margin = (TARGET - CENTRE_CROP) // 2
    sx, sy = resized_w / width, resized_h / height  # the resize's true scale after truncation
    zoom = OUTPUT / CENTRE_CROP
    return CropFrame(sx * zoom, sy * zoom, np.array([left + margin, top + margin], float) * zoom)


def published_crop(photo: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, CropFrame]:
    """The OUTPUT x OUTPUT reference crop of an H x W x 3 uint8 photo, and its frame."""
    height, width = photo.shape[:2]
    frame = crop_frame(points, width, height)
    x0, y0, x1, y1 = frame.source_box()
    # Paste the photo into a black canvas covering the box, so outside is black, not smeared.
    ix0, iy0 = int(np.floor(x0)) - 4, int(np.floor(y0)) - 4
    ix1, iy1 = int(np.ceil(x1)) + 4, int(np.ceil(y1)) + 4
    canvas = np.zeros((iy1 - iy0, ix1 - ix0, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(ix0, 0), max(iy0, 0), min(ix1, width), min(iy1, height)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - iy0:sy1 - iy0, sx0 - ix0:sx1 - ix0] = photo[sy0:sy1, sx0:sx1]
    box = (x0 - ix0, y0 - iy0, x1 - ix0, y1 - iy0)
    crop = Image.fromarray(canvas).resize((OUTPUT, OUTPUT), Image.LANCZOS, box=box)
    return np.asarray(crop), frame


def framed_camera(camera: Camera, points_3d: np.ndarray) -> Camera:
    """`camera` with its intrinsics changed so that its OUTPUT-pixel image is the published
    crop of what it sees: the rig's five points (TEMPLATE order, world) land where the
    authors' alignment puts a face's."""
    pixels, _ = camera.project(np.asarray(points_3d, float))
    frame = crop_frame(pixels, camera.width, camera.height)
    return Camera(camera.c2w, camera.fx * frame.scale_x, camera.fy * frame.scale_y,
                  camera.cx * frame.scale_x - frame.offset[0], camera.cy * frame.scale_y - frame.offset[1],
                  OUTPUT, OUTPUT)


def template_pixels() -> np.ndarray:
    """Where the template's own five points land in the crop (a face that is exactly the
    template, seen from the front): the alignment puts the template's origin at the centre
    and scales it by RESCALE, then the centre crop zooms."""
    return OUTPUT / 2 + np.stack([TEMPLATE[:, 0], -TEMPLATE[:, 1]], 1) * RESCALE * OUTPUT / CENTRE_CROP


def _affine_camera(points_up: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares affine camera from TEMPLATE to the points (y up): its scale (mean
    norm of the two rows) and the image of the template's origin."""
    rows = np.zeros((10, 8))
    rows[0::2, :3], rows[0::2, 3] = TEMPLATE, 1.0
    rows[1::2, 4:7], rows[1::2, 7] = TEMPLATE, 1.0
    solution, *_ = np.linalg.lstsq(rows, points_up.reshape(-1), rcond=None)
    scale = (np.linalg.norm(solution[:3]) + np.linalg.norm(solution[4:7])) / 2
    return float(scale), solution[[3, 7]]
