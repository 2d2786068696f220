"""Writing the textured mesh: GLB with an embedded base-colour PNG, and OBJ + MTL + PNG.
The GLB's material is lit (base colour) or, on request, unlit (`KHR_materials_unlit`:
viewers show the texture as is; docs/mesh.md, "Lighting").

Coordinates go out unchanged: the FLAME frame (+y up, face along +z, metres) is glTF's
frame, and Blender's glTF importer turns it into its own (+z up, face along -y).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import trimesh
from PIL import Image
from torch.nn import functional as F

from joker_core.errors import JokerError
from joker_core.files import atomic_write_bytes

from .unwrap import UVMesh

MATERIAL_NAME = "joker_head"
UNLIT = "KHR_materials_unlit"
FILE_STEM = re.compile(r"[A-Za-z0-9_-]{1,100}")


@dataclass(frozen=True)
class TexturedMesh:
    """What gets exported: a UV-split mesh, smooth normals and its base-colour texture."""

    vertices: np.ndarray  # V x 3, FLAME frame, metres
    faces: np.ndarray     # F x 3, outward winding
    uvs: np.ndarray       # V x 2, origin bottom-left
    normals: np.ndarray   # V x 3 unit, continuous across UV seams
    texture: np.ndarray   # H x W x 3 uint8, sRGB, row 0 at the top

    @classmethod
    def from_uv_mesh(cls, mesh: UVMesh, welded_normals: np.ndarray, texture: np.ndarray) -> TexturedMesh:
        """Take normals from the unsplit mesh so shading shows no UV seams."""
        return cls(mesh.vertices, mesh.faces, mesh.uvs, welded_normals[mesh.source_vertex], texture)

    def colour_at(self, uvs: torch.Tensor) -> torch.Tensor:
        """... x 3 colours in [0, 1]: the texture read bilinearly at `uvs` (... x 2), as a viewer does."""
        texture = torch.tensor(self.texture, dtype=torch.float32).permute(2, 0, 1)[None] / 255.0
        flat = uvs.reshape(-1, 2).float()
        # UVs have their origin bottom-left, the texture's row 0 is its top.
        grid = torch.stack([flat[:, 0] * 2 - 1, 1 - flat[:, 1] * 2], -1)[None, None]
        colour = F.grid_sample(texture, grid, mode="bilinear", align_corners=False)[0, :, 0].T
        return colour.reshape(*uvs.shape[:-1], 3)

    def welded_vertices(self) -> np.ndarray:
        """Per vertex, its index among the distinct positions: UV-split copies of a vertex share one."""
        return np.unique(self.vertices, axis=0, return_inverse=True)[1].reshape(-1)


def _as_trimesh(mesh: TexturedMesh, material: trimesh.visual.material.Material) -> trimesh.Trimesh:
    return trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, vertex_normals=mesh.normals,
                           visual=trimesh.visual.TextureVisuals(uv=mesh.uvs, material=material),
                           process=False)


def _pbr_material(mesh: TexturedMesh) -> trimesh.visual.material.PBRMaterial:
    return trimesh.visual.material.PBRMaterial(
        name=MATERIAL_NAME, baseColorTexture=Image.fromarray(mesh.texture),
        metallicFactor=0.0, roughnessFactor=0.8)  # skin: a dielectric with a soft sheen


def _obj_material(mesh: TexturedMesh, name: str) -> trimesh.visual.material.SimpleMaterial:
    # White diffuse and no specular, so viewers show the texture as is (Kd multiplies map_Kd).
    white, black = (255, 255, 255, 255), (0, 0, 0, 255)
    return trimesh.visual.material.SimpleMaterial(
        name=name, image=Image.fromarray(mesh.texture), diffuse=white, ambient=white, specular=black)


def _mark_unlit(tree: dict) -> None:
    """Every material KHR_materials_unlit (Blender's importer turns it into an emission-like
    shader; viewers without the extension fall back to the lit base colour)."""
    for material in tree.get("materials", []):
        material.setdefault("extensions", {})[UNLIT] = {}
    tree["extensionsUsed"] = sorted({*tree.get("extensionsUsed", []), UNLIT})


def glb_bytes(mesh: TexturedMesh, name: str, unlit: bool = False) -> bytes:
    """Binary glTF with one node and mesh called `name` (the object's name in Blender)."""
    scene = trimesh.Scene()
    scene.add_geometry(_as_trimesh(mesh, _pbr_material(mesh)), geom_name=name, node_name=name)
    return trimesh.exchange.gltf.export_glb(scene, include_normals=True,
                                            tree_postprocessor=_mark_unlit if unlit else None)


def obj_files(mesh: TexturedMesh, name: str) -> dict[str, bytes]:
    """{file name: content} of the OBJ, its MTL and the PNG texture the MTL names."""
    text, extras = trimesh.exchange.obj.export_obj(
        _as_trimesh(mesh, _obj_material(mesh, name)), include_normals=True, include_texture=True, return_texture=True,
        mtl_name=f"{name}.mtl")
    return {f"{name}.obj": text.encode(), **extras}


def write_glb(mesh: TexturedMesh, path: str | Path, unlit: bool = False) -> Path:
    path = Path(path)
    return atomic_write_bytes(path, glb_bytes(mesh, path.stem, unlit))


def write_obj(mesh: TexturedMesh, folder: str | Path, name: str) -> dict[str, Path]:
    """Write the OBJ triple into `folder`; each file lands whole or not at all."""
    return {file_name: atomic_write_bytes(Path(folder) / file_name, content)
            for file_name, content in obj_files(mesh, name).items()}


@dataclass(frozen=True)
class MeshFiles:
    glb: Path
    obj: Path
    mtl: Path
    texture: Path


def write_mesh_files(mesh: TexturedMesh, folder: str | Path, name: str = "head", stats=None,
                     unlit: bool = False) -> MeshFiles:
    """`{name}.glb` and `{name}.obj/.mtl/.png` in `folder`, each written whole; `stats`
    (a mesh.pipeline.MeshStats) records how long each format took. `unlit` marks the GLB's
    material unlit; the OBJ's is the same either way (white diffuse, no specular)."""
    if not FILE_STEM.fullmatch(name):
        raise JokerError(f"mesh name {name!r} is not a plain file name",
                         "use letters, digits, '-' and '_' only, e.g. 'head'")
    folder = Path(folder)
    timed = stats.timed if stats is not None else _untimed
    with timed("glb"):
        glb = write_glb(mesh, folder / f"{name}.glb", unlit)
    with timed("obj"):
        obj = write_obj(mesh, folder, name)
    return MeshFiles(glb=glb, obj=obj[f"{name}.obj"], mtl=obj[f"{name}.mtl"], texture=obj[f"{name}.png"])


@contextlib.contextmanager
def _untimed(stage: str) -> Iterator[None]:
    yield
