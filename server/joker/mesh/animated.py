"""One animated object for a sequence: the registered heads of its frames share the rig's
topology and UV layout, so they are one glTF mesh with a morph target per frame.

The base mesh is the first frame's head; morph target k moves it onto frame k's head (the
first target is zero). The mesh's `extras.targetNames` name the targets `frame_NNNN` (the
scene frame number), which Blender's glTF importer takes as shape-key names. One weights
animation plays the frames: at frame k's time target k has weight 1 and every other 0, so
a LINEAR sampler blends neighbouring frames between keys. Times are the scene frame
numbers over `fps` (a sequence spec carries frame numbers, not a rate).

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

from .export import MATERIAL_NAME, TexturedMesh

SEQUENCE_GLB = "sequence.glb"
DEFAULT_FPS = 24.0
_FLOAT, _UINT = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


def target_name(frame_number: int) -> str:
    return f"frame_{frame_number:04d}"


@dataclass(frozen=True)
class AnimatedFrame:
    number: int               # the scene frame
    vertices: np.ndarray      # V x 3: the base mesh's (UV-split) vertices, this frame's positions
    normals: np.ndarray       # V x 3 unit


class _Buffer:
    """One binary buffer with its bufferViews and accessors, in glTF's JSON shape."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, payload: bytes, target: int | None = None) -> int:
        self.data.extend(b"\0" * (-len(self.data) % 4))  # every view 4-byte aligned
        entry = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(payload)}
        if target is not None:
            entry["target"] = target
        self.data.extend(payload)
        self.views.append(entry)
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        component = _UINT if array.dtype.kind in "ui" else _FLOAT
        array = np.ascontiguousarray(array, np.uint32 if component == _UINT else np.float32)
        rows = array.reshape(len(array), -1) if array.ndim > 1 else array.reshape(-1, 1)
        entry = {"bufferView": self.view(array.tobytes(), target), "componentType": component,
                 "count": int(array.size if kind == "SCALAR" else len(array)), "type": kind}
        if bounds:  # required for POSITION (and animation inputs)
            entry["min"] = rows.min(axis=0).tolist() if kind != "SCALAR" else [float(array.min())]
            entry["max"] = rows.max(axis=0).tolist() if kind != "SCALAR" else [float(array.max())]
        self.accessors.append(entry)
        return len(self.accessors) - 1


def sequence_glb_bytes(base: TexturedMesh, frames: Sequence[AnimatedFrame], name: str = "sequence",
                       fps: float = DEFAULT_FPS) -> bytes:
    """The animated object: `base` (the first frame's textured head) with one morph target
    per frame of `frames` (in playing order) and the weights animation that plays them."""
    if not frames:
        raise ValueError("an animated sequence needs at least one frame")
    buffer = _Buffer()
    positions = np.asarray(base.vertices, np.float32)
    attributes = {
        "POSITION": buffer.accessor(positions, "VEC3", _ARRAY_BUFFER, bounds=True),
        "NORMAL": buffer.accessor(np.asarray(base.normals, np.float32), "VEC3", _ARRAY_BUFFER),
        "TEXCOORD_0": buffer.accessor(np.c_[base.uvs[:, 0], 1.0 - base.uvs[:, 1]], "VEC2", _ARRAY_BUFFER),
    }
    indices = buffer.accessor(np.asarray(base.faces, np.uint32).ravel(), "SCALAR", _ELEMENT_ARRAY_BUFFER)
    targets = [{"POSITION": buffer.accessor(np.asarray(frame.vertices, np.float32) - positions, "VEC3",
                                            _ARRAY_BUFFER, bounds=True),
                "NORMAL": buffer.accessor(np.asarray(frame.normals, np.float32) - np.asarray(base.normals, np.float32),
                                          "VEC3", _ARRAY_BUFFER)} for frame in frames]
    times = np.array([frame.number for frame in frames], np.float64)
    times = ((times - times[0]) / fps).astype(np.float32)
    times_accessor = buffer.accessor(times, "SCALAR", bounds=True)
    weights_accessor = buffer.accessor(np.eye(len(frames), dtype=np.float32).ravel(), "SCALAR")
    image = buffer.view(encode_png(np.asarray(base.texture, np.uint8)))
    names = [target_name(frame.number) for frame in frames]
    document = {
        "asset": {"version": "2.0", "generator": "joker"},
        "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"name": name, "mesh": 0}],
        "meshes": [{"name": name, "weights": [1.0] + [0.0] * (len(frames) - 1), "extras": {"targetNames": names},
                    "primitives": [{"attributes": attributes, "indices": indices, "material": 0, "mode": 4,
                                    "targets": targets}]}],
        "materials": [{"name": MATERIAL_NAME, "pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0}, "metallicFactor": 0.0, "roughnessFactor": 0.8}}],
        "textures": [{"source": 0, "sampler": 0}],
        "samplers": [{"magFilter": 9729, "minFilter": 9987, "wrapS": 10497, "wrapT": 10497}],
        "images": [{"bufferView": image, "mimeType": "image/png"}],
        "animations": [{"name": f"{name}_frames", "samplers": [
            {"input": times_accessor, "output": weights_accessor, "interpolation": "LINEAR"}],
            "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}}]}],
        "accessors": buffer.accessors, "bufferViews": buffer.views,
        "buffers": [{"byteLength": len(buffer.data)}],
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary = bytes(buffer.data) + b"\0" * (-len(buffer.data) % 4)
    chunks = (struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary)
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks


def write_sequence_glb(path: str | Path, base: TexturedMesh, frames: Sequence[AnimatedFrame],
                       fps: float = DEFAULT_FPS) -> Path:
    path = Path(path)
    return atomic_write_bytes(path, sequence_glb_bytes(base, frames, path.stem, fps))
