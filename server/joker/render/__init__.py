"""Rendering without OpenGL: a torch rasterizer and the normal/mask/depth maps built on it.

    from joker.render.raster import interpolate, rasterize, world_to_camera
    from joker.render.normal_maps import render_normal_map

    fragments = rasterize(world_to_camera(vertices, camera), faces, camera)
    colours = interpolate(vertex_colours, faces, fragments)
    normal_map = render_normal_map(vertices, faces, camera)

Modules: raster (rasterize, interpolate), normal_maps (normals, masks, depth), view_sets
(named view sets), head_views (a posed head from many views, saved as a folder). Where the
rig stands is joker_core.framing, what "face" mode draws joker_core.face_region: both are
shared with the Blender add-on. The package imports
nothing itself, so the torch-free view_sets stays cheap to import.
"""
