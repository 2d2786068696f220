"""Reading the person from the photo (design.md §4): landmarks (landmarks.py), where they
lie on the rig (embedding.py), the rig fitted to them (solve.py), the person separated
from the background (foreground.py), the published reference crop and view framing
(crop.py), and the identity measure (identity.py)."""
