"""Mesh stage: density/colour field callables -> textured head mesh as GLB and OBJ."""

from ..box import Box
from .export import MeshFiles, TexturedMesh, write_mesh_files
from .fields import ColorField, DensityField
from .pipeline import MeshSettings, MeshStats, build_textured_mesh

__all__ = ["Box", "ColorField", "DensityField", "MeshFiles", "MeshSettings", "MeshStats", "TexturedMesh",
           "build_textured_mesh", "write_mesh_files"]
