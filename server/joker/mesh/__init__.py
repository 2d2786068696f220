"""Mesh stage: density/colour field callables -> textured head mesh as GLB and OBJ."""

from .fields import BoundingBox, ColorField, DensityField
from .pipeline import MeshResult, MeshSettings, MeshStats, build_textured_mesh, mesh_from_field

__all__ = ["BoundingBox", "ColorField", "DensityField", "MeshResult", "MeshSettings", "MeshStats",
           "build_textured_mesh", "mesh_from_field"]
