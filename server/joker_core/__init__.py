"""Pure-Python core shared by the engine and the Blender add-on.

Only the standard library and numpy: no torch, no bpy. This package is the one definition
of the conventions (axes, cameras, normal-map encoding), the FLAME file format and the job
protocol; the add-on bundles it unchanged.
"""

__version__ = "0.1.0"
