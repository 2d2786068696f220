"""The weight-free projection prior (design.md §4): the reference photo aligned to the rig,
projected onto the neutral head's texture, and rendered in any expression from any view.

photo.py loads the photo, alignment.py finds its camera, texture.py bakes the head's
colours, prior.py answers the prior interface with renders.
"""
