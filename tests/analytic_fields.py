"""Analytic fields with known surfaces and colours: oracles for tests and benchmarks.

Densities follow NeRF's shape: about 0 in empty space, a plateau inside, a smooth step of
`edge` metres at the surface, which lies exactly where density == plateau / 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from joker.box import Box

PLATEAU = 100.0
SURFACE_LEVEL = PLATEAU / 2


def density_from_sdf(signed_distance: torch.Tensor, edge: float = 0.003) -> torch.Tensor:
    return PLATEAU * torch.sigmoid(-signed_distance / edge)


def ellipsoid_sdf(points: torch.Tensor, center, radii) -> torch.Tensor:
    """Approximate signed distance to an ellipsoid (exact for a sphere)."""
    radii_t = points.new_tensor(radii)
    scaled = (points - points.new_tensor(center)) / radii_t
    # sqrt of a sum of squares: several times faster than Tensor.norm on CPU.
    return (scaled.square().sum(dim=-1).sqrt() - 1.0) * radii_t.min()


def smooth_union(a: torch.Tensor, b: torch.Tensor, blend: float) -> torch.Tensor:
    """Polynomial smooth minimum of two distances (Quilez), blending over `blend` metres."""
    h = (0.5 + 0.5 * (b - a) / blend).clamp(0.0, 1.0)
    return torch.lerp(b, a, h) - blend * h * (1.0 - h)


@dataclass(frozen=True)
class Sphere:
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 0.1

    def density(self, points: torch.Tensor) -> torch.Tensor:
        return density_from_sdf(ellipsoid_sdf(points, self.center, (self.radius,) * 3))


def torus_sdf(points: torch.Tensor, center, radius: float, tube: float) -> torch.Tensor:
    """Signed distance to a torus around the z axis through `center`."""
    offset = points - points.new_tensor(center)
    ring = offset[:, :2].square().sum(dim=-1).sqrt() - radius
    return (ring.square() + offset[:, 2].square()).sqrt() - tube


@dataclass(frozen=True)
class HandledSphere:
    """A sphere with `handles` thin rings through its equator: tunnels that quadric
    decimation collapses into non-manifold edges, as it does to thin parts of a field."""

    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 0.1
    handles: int = 6
    tube: float = 0.005

    def density(self, points: torch.Tensor) -> torch.Tensor:
        distance = ellipsoid_sdf(points, self.center, (self.radius,) * 3)
        for angle in torch.arange(self.handles) * (2 * torch.pi / self.handles):
            ring_centre = torch.tensor(self.center) + self.radius * torch.stack(
                [angle.cos(), angle.sin(), torch.tensor(0.0)])
            distance = torch.minimum(distance, torus_sdf(points, ring_centre.tolist(), 0.4 * self.radius, self.tube))
        return density_from_sdf(distance, edge=0.002)


# (center, radii, blend) in the FLAME frame: +y up, the face looks along +z.
HEAD_PARTS = (
    ((0.0, 0.02, 0.0), (0.078, 0.100, 0.095), 0.0),    # cranium
    ((0.0, -0.05, 0.03), (0.060, 0.060, 0.070), 0.02),  # jaw and cheeks
    ((0.0, -0.01, 0.10), (0.012, 0.025, 0.025), 0.01),  # nose, the most +z point
    ((0.08, 0.0, 0.0), (0.010, 0.030, 0.018), 0.01),    # left ear
    ((-0.08, 0.0, 0.0), (0.010, 0.030, 0.018), 0.01),   # right ear
    ((0.0, -0.13, -0.01), (0.050, 0.080, 0.050), 0.02),  # neck, cut by the box
)
HEAD_BOX = Box(center=(0.0, -0.025, 0.005), half_size=0.175)
NOSE_TIP = (0.0, -0.01, 0.125)


class HeadLikeField:
    """A smooth union of ellipsoids shaped like a head, with a smooth colour pattern."""

    @staticmethod
    def signed_distance(points: torch.Tensor) -> torch.Tensor:
        (center, radii, _), *rest = HEAD_PARTS
        distance = ellipsoid_sdf(points, center, radii)
        for center, radii, blend in rest:
            distance = smooth_union(distance, ellipsoid_sdf(points, center, radii), blend)
        return distance

    def density(self, points: torch.Tensor) -> torch.Tensor:
        return density_from_sdf(self.signed_distance(points))

    @staticmethod
    def color(points: torch.Tensor) -> torch.Tensor:
        """Skin-like base with bands that vary along every axis, in [0, 1]."""
        skin = points.new_tensor([0.80, 0.60, 0.50])
        bands = torch.sin(points * points.new_tensor([40.0, 55.0, 70.0]))
        return (skin + 0.15 * bands).clamp(0.0, 1.0)
