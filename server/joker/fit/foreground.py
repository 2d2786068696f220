"""The person separated from the background, before any colour is projected.

OpenCV's GrabCut (a colour-model graph cut; no weights) seeded by the fit: the face inside
the landmarks' hull is surely the person, the fitted head's silhouette probably is, a band
around it (hair, ears, the neck below) may be either, and everything further out is
background. It runs on the photo downscaled to WORK_SIDE and the mask is scaled back.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from joker.prior.projection.texture import resized_camera
from joker.render.raster import rasterize, world_to_camera
from joker_core.cameras import Camera
from joker_core.head_model import HeadModel

from .solve import ReferenceFit, fitted_vertices

WORK_SIDE = 384       # px: GrabCut's resolution (its cost grows with the pixel count)
UNSURE_BAND = 0.35    # of the head's height: how far past the silhouette the person may still be
ITERATIONS = 4
EDGE_PX = 2           # the person's outline is eroded by this much (photo pixels)


def foreground_mask(photo: np.ndarray, model: HeadModel, fit: ReferenceFit) -> np.ndarray:
    """H x W bool: True where the photo shows the person (head, hair, neck, clothes)."""
    height, width = photo.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA) if scale < 1 else photo
    camera = resized_camera(fit.camera, *size)
    head = silhouette(model, fit, camera)
    if not head.any():
        return np.ones((height, width), bool)
    rows = np.flatnonzero(head.any(1))
    band = max(3, int(UNSURE_BAND * (rows[-1] - rows[0] + 1)))
    seeds = np.full(head.shape, cv2.GC_BGD, np.uint8)
    seeds[_dilate(head, band)] = cv2.GC_PR_BGD
    below = np.zeros_like(head)
    below[rows[-1]:] = _dilate(head, band).any(0)  # the neck and shoulders continue downward
    seeds[below] = cv2.GC_PR_BGD
    seeds[head] = cv2.GC_PR_FGD
    if fit.landmarks is not None:
        hull = cv2.convexHull((fit.landmarks.points * (size[0] / width, size[1] / height)).astype(np.int32))
        cv2.fillConvexPoly(seeds, hull, int(cv2.GC_FGD))
    background_model, foreground_model = np.zeros((1, 65)), np.zeros((1, 65))
    bgr = np.ascontiguousarray(small[..., ::-1])
    if (seeds == cv2.GC_BGD).any():
        cv2.setRNGSeed(0)  # grabCut seeds its colour models from OpenCV's global RNG: same photo, same mask
        cv2.grabCut(bgr, seeds, None, background_model, foreground_model, ITERATIONS, cv2.GC_INIT_WITH_MASK)
    person = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.uint8)
    person = cv2.resize(person, (width, height), interpolation=cv2.INTER_NEAREST)
    # Edge pixels mix the person with the background, and bilinear lookups reach one more.
    return ~_dilate(~person.astype(bool), EDGE_PX)


def silhouette(model: HeadModel, fit: ReferenceFit, camera: Camera | None = None) -> np.ndarray:
    """Where the fitted head covers the photo (at `camera`'s size, the fit's by default)."""
    camera = camera or fit.camera
    vertices = torch.as_tensor(fitted_vertices(model, fit), dtype=torch.float32)
    return rasterize(world_to_camera(vertices, camera), torch.as_tensor(model.faces), camera).mask.numpy()


def sampler(mask: np.ndarray):
    """photo_mask for the texture baker: pixels N x 2 -> N bool from an H x W mask."""
    height, width = mask.shape

    def inside(pixels: np.ndarray) -> np.ndarray:
        col = np.clip(pixels[:, 0].astype(int), 0, width - 1)
        row = np.clip(pixels[:, 1].astype(int), 0, height - 1)
        return mask[row, col]

    return inside


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
