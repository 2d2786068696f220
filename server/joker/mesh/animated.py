"""One animated object for a sequence: the registered heads of its frames share the rig's
topology and UV layout, so they are one glTF mesh with a morph target per frame.

The base mesh is the first frame's head; morph target k moves it onto frame k's head (the
first target is zero). The mesh's `extras.targetNames` name the targets `frame_NNNN` (the
scene frame number), which Blender's glTF importer takes as shape-key names. One weights
animation plays the frames: at frame k's time target k has weight 1 and every other 0, so
a LINEAR sampler blends neighbouring frames between keys. Times are the scene frame
numbers over `fps` (a sequence spec carries frame numbers, not a rate). The weights are a
sparse accessor (zeros plus one 1 per key): the file grows linearly with the frames, not
with their square.

Texture: the mesh's material carries one texture for the whole sequence, by default the
per-texel mean across the frames so far (all frames share the rig's UV layout, so a texel
is one point of the skin in every frame), else the first frame's (`texture`; the mean
renders closer to every frame's targets: docs/rig_topology.md). With `per_frame_textures` every frame's own
texture comes too, as a material per frame under the KHR_materials_variants extension
(variant `frame_NNNN`), which Blender's importer lists as material variants.

A running sequence adds its frames one by one (`SequenceGlb.add`, then `write`): what a
frame adds is encoded once and kept, so a frame costs its own data (and, with a merged
texture, one texture encode) plus writing the file out, never re-encoding the frames
before it. The file is replaced whole (a temporary file and a rename): a reader of the
artifact, or a frame that fails, never sees half a file.

trimesh writes no morph targets, so the GLB is assembled here (glTF 2.0, one buffer).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from joker_core.files import atomic_write_bytes
from joker_core.png import encode_png
from joker_core.protocol import SEQUENCE_GLB

from .export import MATERIAL_NAME, UNLIT, TexturedMesh

DEFAULT_FPS = 24.0
SHARED_TEXTURES = ("first", "mean")
_FLOAT, _UINT = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_VARIANTS = "KHR_materials_variants"


def target_name(frame_number: int) -> str:
    return f"frame_{frame_number:04d}"


@dataclass(frozen=True)
class AnimationSettings:
    fps: float = DEFAULT_FPS
    texture: str = "mean"             # the mesh's one texture: per-texel "mean" of the frames (measured best), or the "first"
    per_frame_textures: bool = False  # also each frame's own, as a material variant per frame
    unlit: bool = False               # every material KHR_materials_unlit, as a single head's `material: unlit`

    def __post_init__(self) -> None:
        if self.texture not in SHARED_TEXTURES:
            raise ValueError(f"texture {self.texture!r} is not one of {SHARED_TEXTURES}")


class _Buffer:
    """One binary buffer with its bufferViews and accessors, in glTF's JSON shape."""

    def __init__(self, start: int = 0, views: Sequence[dict] = (), accessors: Sequence[dict] = ()) -> None:
        self.start = start  # where this buffer's data goes in the GLB's one buffer
        self.data = bytearray()
        self.views, self.accessors = list(views), list(accessors)

    def following(self) -> _Buffer:
        """A buffer whose data goes right after this one's, numbering on from its views and accessors."""
        return _Buffer(self.start + len(self.data), self.views, self.accessors)

    def view(self, payload: bytes, target: int | None = None) -> int:
        self.data.extend(b"\0" * (-(self.start + len(self.data)) % 4))  # every view 4-byte aligned
        entry = {"buffer": 0, "byteOffset": self.start + len(self.data), "byteLength": len(payload)}
        if target is not None:
            entry["target"] = target
        self.data.extend(payload)
        self.views.append(entry)
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        entry = self._entry(array, kind, bounds)
        entry["bufferView"] = self.view(self._payload(array), target)
        self.accessors.append(entry)
        return len(self.accessors) - 1

    def sparse_accessor(self, count: int, indices: np.ndarray, values: np.ndarray) -> int:
        """A float SCALAR accessor of `count` zeros but `values` at `indices` (increasing)."""
        entry = {"componentType": _FLOAT, "count": int(count), "type": "SCALAR", "sparse": {
            "count": len(indices),
            "indices": {"bufferView": self.view(self._payload(indices)), "componentType": _UINT},
            "values": {"bufferView": self.view(self._payload(values))}}}
        self.accessors.append(entry)
        return len(self.accessors) - 1

    @staticmethod
    def _payload(array: np.ndarray) -> bytes:
        return np.ascontiguousarray(array, np.uint32 if array.dtype.kind in "ui" else np.float32).tobytes()

    @staticmethod
    def _entry(array: np.ndarray, kind: str, bounds: bool) -> dict:
        component = _UINT if array.dtype.kind in "ui" else _FLOAT
        rows = array.reshape(len(array), -1) if array.ndim > 1 else array.reshape(-1, 1)
        entry = {"componentType": component, "count": int(array.size if kind == "SCALAR" else len(array)), "type": kind}
        if bounds:  # required for POSITION (and animation inputs)
            entry["min"] = rows.min(axis=0).astype(np.float32).tolist() if kind != "SCALAR" else [float(array.min())]
            entry["max"] = rows.max(axis=0).astype(np.float32).tolist() if kind != "SCALAR" else [float(array.max())]
        return entry


def _material(name: str, texture: int, unlit: bool) -> dict:
    material = {"name": name, "pbrMetallicRoughness": {"baseColorTexture": {"index": texture}, "metallicFactor": 0.0,
                                                       "roughnessFactor": 0.8}}  # skin, as export.py's
    return {**material, "extensions": {UNLIT: {}}} if unlit else material


class SequenceGlb:
    """sequence.glb of a sequence whose frames arrive one by one (see the module's doc)."""

    def __init__(self, path: str | Path, base: TexturedMesh, settings: AnimationSettings = AnimationSettings()):
        self.path, self.settings = Path(path), settings
        self.positions = np.asarray(base.vertices, np.float32)
        self.normals = np.asarray(base.normals, np.float32)
        self.kept = _Buffer()  # geometry, then each frame's targets (and textures), in the order they came
        self.attributes = {
            "POSITION": self.kept.accessor(self.positions, "VEC3", _ARRAY_BUFFER, bounds=True),
            "NORMAL": self.kept.accessor(self.normals, "VEC3", _ARRAY_BUFFER),
            "TEXCOORD_0": self.kept.accessor(np.c_[base.uvs[:, 0], 1.0 - base.uvs[:, 1]], "VEC2", _ARRAY_BUFFER),
        }
        self.indices = self.kept.accessor(np.asarray(base.faces, np.uint32).ravel(), "SCALAR", _ELEMENT_ARRAY_BUFFER)
        self.faces = np.asarray(base.faces)
        self.numbers: list[int] = []
        self.targets: list[dict] = []
        self.frame_images: list[int] = []   # bufferView of each frame's texture (per_frame_textures)
        # the shared texture's PNG, once encoded: the base's is the "first"; the "mean" is encoded when written
        self.shared_png = encode_png(np.asarray(base.texture, np.uint8)) if settings.texture == "first" else None
        self.texture_sum = np.zeros(np.shape(base.texture), np.float64)

    def __len__(self) -> int:
        return len(self.numbers)

    def add(self, number: int, head: TexturedMesh) -> None:
        """Frame `number` (scene frames, increasing): `head` in the base's topology and UV layout."""
        if np.shape(head.vertices) != self.positions.shape or not np.array_equal(head.faces, self.faces):
            raise ValueError(f"frame {number}'s head has not the sequence's topology")
        if self.numbers and number <= self.numbers[-1]:
            raise ValueError(f"frame {number} comes after frame {self.numbers[-1]}")
        self.targets.append({
            "POSITION": self.kept.accessor(np.asarray(head.vertices, np.float32) - self.positions, "VEC3",
                                           _ARRAY_BUFFER, bounds=True),
            "NORMAL": self.kept.accessor(np.asarray(head.normals, np.float32) - self.normals, "VEC3", _ARRAY_BUFFER)})
        self.numbers.append(number)
        texture = np.asarray(head.texture, np.uint8)
        if self.settings.per_frame_textures:
            self.frame_images.append(self.kept.view(encode_png(texture)))
        if self.settings.texture == "mean":
            self.texture_sum += texture
            self.shared_png = None  # encoded when next written

    def write(self) -> Path:
        """The file as of the frames added so far (at least one)."""
        return atomic_write_bytes(self.path, self.glb_bytes())

    def glb_bytes(self) -> bytes:
        if not self.numbers:
            raise ValueError("an animated sequence needs at least one frame")
        count, name = len(self.numbers), self.path.stem
        if self.shared_png is None:
            self.shared_png = encode_png(np.round(self.texture_sum / count).astype(np.uint8))
        tail = self.kept.following()  # what changes with every frame: the shared texture, the animation
        times = np.array(self.numbers, np.float64)
        times_accessor = tail.accessor(((times - times[0]) / self.settings.fps).astype(np.float32), "SCALAR",
                                       bounds=True)
        diagonal = np.arange(count, dtype=np.uint32) * (count + 1)  # key k, target k
        weights_accessor = tail.sparse_accessor(count * count, diagonal, np.ones(count, np.float32))
        images = [tail.view(self.shared_png), *self.frame_images]
        names = [target_name(number) for number in self.numbers]
        primitive = {"attributes": self.attributes, "indices": self.indices, "material": 0, "mode": 4,
                     "targets": self.targets}
        document = {
            "asset": {"version": "2.0", "generator": "joker"},
            "scene": 0, "scenes": [{"nodes": [0]}],
            "nodes": [{"name": name, "mesh": 0}],
            "meshes": [{"name": name, "weights": [1.0] + [0.0] * (count - 1), "extras": {"targetNames": names},
                        "primitives": [primitive]}],
            "materials": [_material(MATERIAL_NAME, 0, self.settings.unlit)],
            "textures": [{"source": index, "sampler": 0} for index in range(len(images))],
            "samplers": [{"magFilter": 9729, "minFilter": 9987, "wrapS": 10497, "wrapT": 10497}],
            "images": [{"bufferView": view, "mimeType": "image/png"} for view in images],
            "animations": [{"name": f"{name}_frames", "samplers": [
                {"input": times_accessor, "output": weights_accessor, "interpolation": "LINEAR"}],
                "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}}]}],
            "accessors": tail.accessors, "bufferViews": tail.views,
            "buffers": [{"byteLength": len(self.kept.data) + len(tail.data)}],
        }
        extensions = [UNLIT] if self.settings.unlit else []
        if self.frame_images:  # material k + 1: frame k's own texture, its variant
            document["materials"] += [_material(frame, index + 1, self.settings.unlit) for index, frame in enumerate(names)]
            extensions.append(_VARIANTS)
            document["extensions"] = {_VARIANTS: {"variants": [{"name": frame} for frame in names]}}
            primitive["extensions"] = {_VARIANTS: {"mappings": [
                {"material": index + 1, "variants": [index]} for index in range(count)]}}
        if extensions:
            document["extensionsUsed"] = extensions
        text = json.dumps(document, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 4)
        binary_length = len(self.kept.data) + len(tail.data)
        padding = b"\0" * (-binary_length % 4)
        binary_length += len(padding)
        total = 12 + 8 + len(text) + 8 + binary_length
        return b"".join((struct.pack("<III", 0x46546C67, 2, total), struct.pack("<II", len(text), 0x4E4F534A), text,
                         struct.pack("<II", binary_length, 0x004E4942), self.kept.data, tail.data, padding))


def write_sequence_glb(path: str | Path, frames: Sequence[tuple[int, TexturedMesh]],
                       settings: AnimationSettings = AnimationSettings()) -> Path:
    """sequence.glb of (scene frame number, registered head) pairs in playing order; the
    first head is the base."""
    if not frames:
        raise ValueError("an animated sequence needs at least one frame")
    animation = SequenceGlb(path, frames[0][1], settings)
    for number, head in frames:
        animation.add(number, head)
    return animation.write()
