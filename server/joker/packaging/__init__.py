"""Packaging the Blender extension: our core as a wheel, then Blender's own build/validate."""
