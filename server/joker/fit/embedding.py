"""Where the 68 iBUG landmarks lie on a head model: a face index and barycentric weights
per landmark, so they follow the mesh through every shape, expression and pose.

The jaw contour (points 0-16) is a silhouette, not a surface point: which vertices form it
depends on the view. The chin (8) faces the camera in every usable photo and is a surface
point; the others are dynamic on the demo head, the way FLAME fitting handles them: each
lies on a cut of the head (a plane through the face's centre and the view axis), and for
the current pose it is the cut's point furthest out in the image, the one the silhouette
runs through (`JawContour`). FLAME's static embedding leaves them out.

Sources:
- the demo head: defined here from its own geometry (its eye and mouth openings, its
  anatomy table), so an edit of the generator moves the landmarks with it;
- FLAME: the embedding files distributed with it (`flame_static_embedding.pkl`, 51
  points 17-67) or DECA's `landmark_embedding.npy` (its static 51 points), read as data
  through the restricted unpickler.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from joker_core.cameras import Camera
from joker_core.demo_head import anatomy as A
from joker_core.errors import JokerError
from joker_core.head_model import HeadModel
from joker_core.legacy_pickle import as_array, load_data_pickle
from joker_core.lbs import numpy_rig, pose
from joker_core.rig_params import RigParams

CHIN = 8
STATIC_FLAME = np.arange(17, 68)  # FLAME's static embedding covers brows, nose, eyes, lips


@dataclass(frozen=True)
class JawContour:
    """Dynamic jaw-contour landmarks: per landmark, one cut across the jaw (where the mesh's
    edges cross a plane, each point a blend of an edge's two vertices) and the cut's
    outward direction; the landmark is the cut's point furthest out as the camera sees it."""

    indices: np.ndarray     # C: 68-layout numbers
    edges: np.ndarray       # C x M x 2 vertex ids (rows padded by repeating a point)
    blend: np.ndarray       # C x M: how far along each edge the plane crosses it
    outward: np.ndarray     # C x 3 unit directions in the model frame (z = 0)

    def points(self, vertices, rotation, translation, edges=None):
        """C x 3 silhouette points on `vertices` (numpy or torch, N x 3, model frame) seen by a
        camera whose world-to-camera transform is `rotation`, `translation`. `edges`: the
        edges' vertex ids in `vertices` when that is a reduced vertex set."""
        ids = self.edges if edges is None else edges
        lib = np if isinstance(vertices, np.ndarray) else torch
        blend, outward = ((self.blend, self.outward) if lib is np
                          else (vertices.new_tensor(self.blend), vertices.new_tensor(self.outward)))
        crossing = vertices[ids[..., 0]] * (1 - blend[..., None]) + vertices[ids[..., 1]] * blend[..., None]
        seen = crossing @ rotation.T + translation              # camera frame, looking along -z
        image = seen[..., :2] / -seen[..., 2:3]                 # x right, y up (perspective)
        turned = (outward @ rotation.T)[:, None, :2]            # the cut's direction in the image
        best = (image * turned).sum(-1).argmax(-1)              # a choice, not a function to differentiate
        rows = np.arange(len(ids)) if lib is np else torch.arange(len(ids))
        return crossing[rows, best]

    def restricted(self, wanted: np.ndarray) -> "JawContour | None":
        keep = np.isin(self.indices, wanted)
        if not keep.any():
            return None
        return JawContour(self.indices[keep], self.edges[keep], self.blend[keep], self.outward[keep])


@dataclass(frozen=True)
class LandmarkEmbedding:
    indices: np.ndarray      # K: the 68-layout number of each embedded landmark
    faces: np.ndarray        # K: the triangle it lies on
    barycentric: np.ndarray  # K x 3
    contour: JawContour | None = None  # the dynamic jaw contour, where the head has one

    @property
    def all_indices(self) -> np.ndarray:
        """The static landmarks' numbers, then the contour's."""
        return self.indices if self.contour is None else np.concatenate([self.indices, self.contour.indices])

    def pixels(self, vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> np.ndarray:
        """Pixels of every embedded landmark (all_indices' order) on `vertices` seen by `camera`."""
        points = self.points(vertices, faces)
        if self.contour is not None:
            w2c = np.linalg.inv(camera.c2w)
            points = np.concatenate([points, self.contour.points(vertices, w2c[:3, :3], w2c[:3, 3])])
        return camera.project(points)[0]

    def points(self, vertices, faces):
        """K x 3 landmark positions on `vertices` (numpy or torch, ... x N x 3)."""
        corners = vertices[..., faces[self.faces], :]          # ... x K x 3 corners x 3
        weights = self.barycentric if isinstance(vertices, np.ndarray) else \
            vertices.new_tensor(self.barycentric)
        return (corners * weights[..., None]).sum(-2)

    def restricted(self, wanted: np.ndarray) -> "LandmarkEmbedding":
        """Only the landmarks numbered `wanted` that this embedding has, in wanted's order."""
        where = {int(i): k for k, i in enumerate(self.indices)}
        keep = [where[int(i)] for i in wanted if int(i) in where]
        contour = None if self.contour is None else self.contour.restricted(wanted)
        return LandmarkEmbedding(self.indices[keep], self.faces[keep], self.barycentric[keep], contour)


def embedding_for(head: HeadModel, path: str | Path | None = None) -> LandmarkEmbedding | None:
    """The head's embedding: from `path` when given, the demo head's own, else None (the
    caller says so and falls back to the eye-based alignment)."""
    if path is not None:
        return read_flame_embedding(path, head)
    if head.is_demo:
        return demo_head_embedding(head)
    return None


# --- FLAME files -------------------------------------------------------------------------

def read_flame_embedding(path: str | Path, head: HeadModel) -> LandmarkEmbedding:
    path = Path(path)
    if not path.is_file():
        raise JokerError(f"landmark embedding {path} does not exist",
                         "give flame_static_embedding.pkl or DECA's landmark_embedding.npy")
    data = path.read_bytes()
    content = load_data_pickle(data if path.suffix.lower() == ".pkl" else _npy_pickle(data, path), str(path))
    if isinstance(content, np.ndarray) and content.dtype == object and content.shape == ():
        content = content.item()
    if not isinstance(content, dict):
        raise JokerError(f"{path} holds no landmark embedding", "give flame_static_embedding.pkl or DECA's "
                         "landmark_embedding.npy")
    for face_key, bary_key in (("lmk_face_idx", "lmk_b_coords"), ("static_lmk_faces_idx", "static_lmk_bary_coords")):
        if face_key in content and bary_key in content:
            faces = as_array(content[face_key], face_key, str(path)).astype(np.int64).ravel()
            barycentric = as_array(content[bary_key], bary_key, str(path)).astype(np.float64).reshape(-1, 3)
            break
    else:
        raise JokerError(f"{path} has no static landmark embedding (lmk_face_idx / static_lmk_faces_idx)",
                         "give flame_static_embedding.pkl or DECA's landmark_embedding.npy")
    if len(faces) != len(STATIC_FLAME) or len(barycentric) != len(faces):
        raise JokerError(f"{path} embeds {len(faces)} landmarks, expected FLAME's {len(STATIC_FLAME)} static ones",
                         "give flame_static_embedding.pkl or DECA's landmark_embedding.npy")
    if faces.min() < 0 or faces.max() >= len(head.faces):
        raise JokerError(f"{path} points at triangles outside the model's {len(head.faces)}",
                         "use the embedding file that belongs to this FLAME model")
    return LandmarkEmbedding(STATIC_FLAME.copy(), faces, barycentric)


def _npy_pickle(data: bytes, path: Path) -> bytes:
    """The pickle stream of an object-array .npy (never handed to np.load's pickle)."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        _, _, dtype = np.lib.format._read_array_header(stream, version)
    except ValueError as exc:
        raise JokerError(f"{path} is not a .npy file ({exc})", "give DECA's landmark_embedding.npy") from None
    if dtype != object:
        raise JokerError(f"{path} holds a plain array, not an embedding dict", "give DECA's landmark_embedding.npy")
    return stream.read()


# --- the demo head -----------------------------------------------------------------------

# Offsets from the features the generator places (anatomy.py), metres, subject's left (+x).
BROW_X = np.linspace(0.012, 0.052, 5)          # inner to outer
BROW_LIFT = np.array([0.000, 0.004, 0.005, 0.003, -0.002])
NOSE_BRIDGE_TOP = 0.030                         # y of point 27, level with the eyes
NOSTRIL_X = np.array([0.013, 0.0065, 0.0])     # 31/35, 32/34, 33
NOSTRIL_DROP = np.array([0.010, 0.013, 0.014])  # below the nose tip
UPPER_LIP_X = np.array([0.014, 0.006, 0.0])    # 49/53, 50/52, 51
UPPER_LIP_RISE = np.array([0.006, 0.008, 0.007])
LOWER_LIP_X = np.array([0.014, 0.0])           # 55/59 (and 56/58 halfway), 57
LOWER_LIP_DROP = np.array([0.008, 0.011])
JAW_OPEN = 0.25  # rad: the pose that separates the lips, to tell upper from lower


def demo_head_embedding(head: HeadModel) -> LandmarkEmbedding:
    skin = _part_faces(head, "skin")
    vertices = np.asarray(head.v_template, np.float64)
    opened = pose(numpy_rig(head), RigParams(jaw_pose=np.array([JAW_OPEN, 0, 0])).validated(head)).vertices
    loops = _boundary_vertices(head.faces[skin])
    landmarks = head.landmarks
    points: dict[int, tuple[str, object]] = {}  # number -> ("ray", (x, y)) or ("vertex", id)

    def both_sides(numbers_left, numbers_right, xs, ys):
        for n_left, n_right, x, y in zip(numbers_left, numbers_right, xs, ys):
            points[n_left] = ("ray", (x, y))
            points[n_right] = ("ray", (-x, y))

    points[CHIN] = ("vertex", landmarks["chin"])
    both_sides(range(22, 27), range(21, 16, -1), BROW_X, A.BROW_Y + BROW_LIFT)
    tip = vertices[landmarks["nose_tip"]]
    for k, y in enumerate(np.linspace(NOSE_BRIDGE_TOP, tip[1], 4)[:3]):
        points[27 + k] = ("ray", (0.0, y))
    points[30] = ("vertex", landmarks["nose_tip"])
    both_sides((35, 34, 33), (31, 32, 33), NOSTRIL_X, tip[1] - NOSTRIL_DROP)
    for eye, ball, numbers in ((A.EYE_LEFT, "eyeball_left", (42, 43, 44, 45, 46, 47)),
                               (A.mirror(A.EYE_LEFT), "eyeball_right", (39, 38, 37, 36, 41, 40))):
        points.update(_eye_contour(vertices, head.faces, skin, _part_faces(head, ball), eye, numbers))
    corner_left, corner_right = landmarks["mouth_left"], landmarks["mouth_right"]
    points[54], points[64] = ("vertex", corner_left), ("vertex", corner_left)
    points[48], points[60] = ("vertex", corner_right), ("vertex", corner_right)
    slit_y = float(vertices[[corner_left, corner_right], 1].mean())
    both_sides((53, 52, 51), (49, 50, 51), UPPER_LIP_X, slit_y + UPPER_LIP_RISE)
    lower_y = slit_y - LOWER_LIP_DROP
    both_sides((55, 56, 57), (59, 58, 57), (LOWER_LIP_X[0], LOWER_LIP_X[0] / 2, 0.0),
               (lower_y[0], (lower_y[0] + lower_y[1]) / 2, lower_y[1]))
    points.update(_inner_lips(vertices, opened, loops, corner_left, corner_right))

    numbers = np.array(sorted(points))
    faces, barycentric = [], []
    for number in numbers:
        kind, value = points[number]
        face, weights = (_ray_hit(vertices, head.faces, skin, value) if kind == "ray"
                         else _vertex_face(head.faces, skin, int(value)))
        faces.append(face)
        barycentric.append(weights)
    contour = _jaw_contour(vertices, head.faces[skin], landmarks)
    return LandmarkEmbedding(numbers, np.array(faces), np.array(barycentric), contour)


# The 300-W mean face's jaw contour, points 0-7 (subject's right; 9-16 mirror them): across
# as a fraction of the head's half-width at the eyes, down as a fraction of the way from
# the eyes to the chin (OpenFace's 68-point template of the 300-W mean face).
CONTOUR_ACROSS = np.array([1.0, 0.992, 0.961, 0.906, 0.802, 0.645, 0.455, 0.242])
CONTOUR_DOWN = np.array([-0.008, 0.159, 0.327, 0.491, 0.645, 0.781, 0.896, 0.990])
CONTOUR_HUB = 0.4     # the cuts' common centre, as far down from the eyes to the chin
BEHIND_EARS = 0.008   # m: the cuts keep to skin this far in front of the ears' centres
BELOW_CHIN = 0.002    # m: and above the chin (the neck and the chin's underside are no contour)


def _jaw_contour(vertices: np.ndarray, faces: np.ndarray, landmarks: dict) -> JawContour:
    """Cuts through the face's centre, aimed where the mean face's contour points lie on a
    frontal head as wide as this one at the eyes; each cut keeps the skin in front of the
    ears and above the chin on its outer side."""
    eye_y, chin = float(vertices[landmarks["eye_left"], 1]), vertices[landmarks["chin"]]
    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1), axis=0)
    ends = vertices[edges]                                             # E x 2 x 3
    usable = ((ends[..., 2] > vertices[landmarks["ear_left"], 2] + BEHIND_EARS)
              & (ends[..., 1] > chin[1] - BELOW_CHIN)).all(1)
    edges, ends = edges[usable], ends[usable]
    skin = np.unique(faces)
    level = skin[(np.abs(vertices[skin, 1] - eye_y) < 0.003)
                 & (vertices[skin, 2] > vertices[landmarks["ear_left"], 2] + BEHIND_EARS)]
    half_width = float(np.abs(vertices[level, 0]).max())
    hub = np.array([0.0, eye_y + CONTOUR_HUB * (chin[1] - eye_y)])
    numbers, cuts, blends, outward = [], [], [], []
    for side, order in ((-1.0, range(0, 8)), (1.0, range(16, 8, -1))):
        for k, number in enumerate(order):
            aim = np.array([side * CONTOUR_ACROSS[k] * half_width, eye_y + CONTOUR_DOWN[k] * (chin[1] - eye_y)])
            direction = (aim - hub) / np.linalg.norm(aim - hub)
            side_of = (ends[..., :2] - hub) @ np.array([-direction[1], direction[0]])  # E x 2
            crosses = side_of[:, 0] * side_of[:, 1] < 0
            blend = side_of[crosses, 0] / (side_of[crosses, 0] - side_of[crosses, 1])
            at = ends[crosses, 0, :2] * (1 - blend[:, None]) + ends[crosses, 1, :2] * blend[:, None]
            outer = (at - hub) @ direction > 0
            if not outer.any():
                raise JokerError(f"no skin on the demo head's jaw cut for landmark {number}", "rebuild the demo head")
            numbers.append(number)
            cuts.append(edges[crosses][outer])
            blends.append(blend[outer])
            outward.append([direction[0], direction[1], 0.0])
    width = max(len(cut) for cut in cuts)
    return JawContour(np.array(numbers), np.stack([np.resize(cut, (width, 2)) for cut in cuts]),
                      np.stack([np.resize(blend, width) for blend in blends]), np.array(outward))


def _part_faces(head: HeadModel, part: str) -> np.ndarray:
    first, end = head.metadata["face_parts"][part]
    return np.arange(first, end)


def _boundary_vertices(faces: np.ndarray) -> np.ndarray:
    """Vertices on edges used by one face only (the openings of the skin)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    return np.unique(unique[counts == 1])


def _eye_contour(vertices, faces, skin, eyeball, eye, numbers) -> dict[int, tuple[str, tuple]]:
    """The six iBUG eye points on the lids' rim, where the eyeball shows through the skin
    seen from the front: inner corner, two upper, outer corner, two lower (`numbers` in
    that order, the 68 layout's). Rays just outside the opening land on the lids' skin,
    which blinks move."""
    step = 0.0005
    xs, ys, ball_depth = _front_depth(vertices, faces[eyeball], eye[:2], step)
    _, _, skin_depth = _front_depth(vertices, faces[skin], eye[:2], step)
    shows = ball_depth < skin_depth  # columns x rows
    if shows.sum() < 6:
        raise JokerError("the demo head shows no eyeball to place eye landmarks on", "rebuild the demo head")
    columns = np.flatnonzero(shows.any(1))
    inner_col, outer_col = (columns[0], columns[-1]) if eye[0] > 0 else (columns[-1], columns[0])
    outward = 1.0 if outer_col > inner_col else -1.0

    def corner(col: int, direction: float) -> tuple:
        return ("ray", (xs[col] + direction * step, ys[np.flatnonzero(shows[col])].mean()))

    def lid(fraction: float, upper: bool) -> tuple:
        col = int(round(inner_col + fraction * (outer_col - inner_col)))
        rows = np.flatnonzero(shows[col])
        return ("ray", (xs[col], ys[rows].max() + step) if upper else (xs[col], ys[rows].min() - step))

    chosen = (corner(inner_col, -outward), lid(1 / 3, True), lid(2 / 3, True), corner(outer_col, outward),
              lid(2 / 3, False), lid(1 / 3, False))
    return dict(zip(numbers, chosen))


def _front_depth(vertices, faces, centre, step, half_width=0.025):
    """(x samples, y samples, depth columns x rows) of the mesh seen from far along +z,
    sampled every `step` metres in a square around `centre` (inf where nothing is)."""
    from joker.render.raster import rasterize, world_to_camera

    distance, size = 10.0, int(round(2 * half_width / step))  # far enough to be near-orthographic
    focal = distance / step
    c2w = np.eye(4)
    c2w[:3, 3] = (centre[0], centre[1], distance)
    near = (np.abs(vertices[faces, :2] - centre).max(-1) < half_width + 0.01).any(1)
    faces = faces[near]
    camera = Camera(c2w, focal, focal, size / 2, size / 2, size, size)
    points = world_to_camera(torch.as_tensor(vertices, dtype=torch.float64), camera)
    depth = rasterize(points.float(), torch.as_tensor(faces), camera).depth.numpy().astype(np.float64)
    depth = np.where(depth > 0, depth, np.inf).T[:, ::-1]  # columns x rows, rows bottom-up
    offsets = (np.arange(size) + 0.5 - size / 2) * step
    return centre[0] + offsets, centre[1] + offsets, depth


def _inner_lips(vertices, opened, loops, corner_left, corner_right) -> dict[int, tuple[str, int]]:
    """61-63 on the upper lip's edge, 65-67 on the lower's: the mouth opening's rim,
    split by which side moves when the jaw opens."""
    mouth = A.MOUTH_CENTRE
    near = loops[(np.abs(vertices[loops, 0]) < A.MOUTH_HALF_WIDTH * 1.2)
                 & (np.abs(vertices[loops, 1] - mouth[1]) < 0.02) & (vertices[loops, 2] > 0.03)]
    lower = opened[near, 1] < vertices[near, 1] - 1e-3
    upper_rim, lower_rim = near[~lower], near[lower]
    half = A.MOUTH_HALF_WIDTH / 2

    def at(rim, x):
        return ("vertex", int(rim[np.argmin(np.abs(vertices[rim, 0] - x))]))

    return {61: at(upper_rim, -half), 62: at(upper_rim, 0.0), 63: at(upper_rim, half),
            65: at(lower_rim, half), 66: at(lower_rim, 0.0), 67: at(lower_rim, -half)}


def _vertex_face(faces, candidates, vertex) -> tuple[int, np.ndarray]:
    rows, corners = np.nonzero(faces[candidates] == vertex)
    if len(rows) == 0:
        raise JokerError(f"demo head vertex {vertex} is on no skin triangle", "rebuild the demo head")
    weights = np.zeros(3)
    weights[corners[0]] = 1.0
    return int(candidates[rows[0]]), weights


def _ray_hit(vertices, faces, candidates, xy) -> tuple[int, np.ndarray]:
    """The frontmost skin triangle under (x, y) looking along -z, and the barycentrics there."""
    hit = _hits(vertices, faces, candidates, xy)
    if hit is None:
        raise JokerError(f"no skin of the demo head under landmark position {tuple(xy)}", "rebuild the demo head")
    return hit[0], hit[1]


def _hits(vertices, faces, candidates, xy):
    """(triangle, barycentrics, z) of the frontmost of `candidates` under (x, y), or None."""
    a, b, c = (vertices[faces[candidates, k], :2] for k in range(3))
    p = np.asarray(xy, float)
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    safe = np.where(np.abs(det) > 1e-14, det, np.inf)
    w1 = ((p[0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (p[1] - a[:, 1])) / safe
    w2 = ((b[:, 0] - a[:, 0]) * (p[1] - a[:, 1]) - (p[0] - a[:, 0]) * (b[:, 1] - a[:, 1])) / safe
    weights = np.stack([1 - w1 - w2, w1, w2], 1)
    inside = (weights >= -1e-9).all(1) & np.isfinite(det) & (np.abs(det) > 1e-14)
    if not inside.any():
        return None
    z = (weights * vertices[faces[candidates], 2]).sum(1)
    best = np.flatnonzero(inside)[np.argmax(z[inside])]
    return int(candidates[best]), weights[best], float(z[best])
