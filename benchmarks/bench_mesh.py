"""Mesh-stage figures on this machine: field -> grid -> marching cubes -> cleanup -> xatlas
-> bake -> GLB/OBJ, time per stage against the 10 s goal (256^3 grid, 1024^2 texture), and
how close the result is to the analytic head it came from.

    .venv/bin/python benchmarks/bench_mesh.py [--resolution 256] [--texture 1024] [--faces 20000]
        [--repeat 1] [--field head|triplane] [--threads N]

`--field triplane` meshes the engine's own (untrained, blob-initialised) radiance field
instead, to show what querying a real field costs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from joker.mesh import MeshSettings, MeshStats, build_textured_mesh, write_mesh_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test support: analytic fields
from analytic_fields import HEAD_BOX, SURFACE_LEVEL, HeadLikeField  # noqa: E402
from texture_lookup import sample_texture  # noqa: E402

GOAL_SECONDS = 10.0


def field_under_test(name: str):
    """(density, color, box, iso level) of the field to mesh."""
    if name == "head":
        head = HeadLikeField()
        return head.density, head.color, HEAD_BOX, SURFACE_LEVEL
    from joker.distill import RadianceField

    torch.manual_seed(0)
    field = RadianceField()
    # Untrained, the field is its density blob: ~10 at the centre, so its surface is lower.
    return field.density, field.color, field.box, 5.0


def accuracy_against_the_head(glb_path) -> str:
    (mesh,) = trimesh.load(glb_path, force="scene", process=False).geometry.values()
    on_the_cap = mesh.vertices[:, 1] < HEAD_BOX.minimum[1] + 1e-4  # where the box cuts the neck
    distance_mm = HeadLikeField.signed_distance(torch.from_numpy(mesh.vertices[~on_the_cap])).abs().numpy() * 1e3
    centres = mesh.vertices[mesh.faces].mean(axis=1)
    expected = HeadLikeField.color(torch.from_numpy(centres)).numpy()
    texture = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    colour_error = np.abs(sample_texture(texture, mesh.visual.uv[mesh.faces].mean(axis=1)) - expected * 255)
    return (f"vertex distance to the true surface: mean {distance_mm.mean():.3f} mm, max {distance_mm.max():.3f} mm\n"
            f"colour at face centres vs field: median {np.median(colour_error):.2f}/255, "
            f"99th percentile {np.percentile(colour_error, 99):.2f}/255")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--texture", type=int, default=1024)
    parser.add_argument("--faces", type=int, default=MeshSettings.face_budget)
    parser.add_argument("--repeat", type=int, default=1, help="runs; the fastest is reported")
    parser.add_argument("--field", choices=["head", "triplane"], default="head")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads; 1 makes CPU time a fair stand-in for idle wall time")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    density, color, box, iso_level = field_under_test(args.field)
    settings = MeshSettings(resolution=args.resolution, iso_level=iso_level, texture_size=args.texture,
                            face_budget=args.faces)
    print(f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} (other work inflates wall time; CPU time less so)")
    print(f"field {args.field}, grid {args.resolution}^3 cells, texture {args.texture}^2, face budget {args.faces}")
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            stats = MeshStats()
            mesh = build_textured_mesh(density, color, box, settings, stats)
            result = write_mesh_files(mesh, folder, "head", stats)
            runs.append((time.perf_counter() - wall, time.process_time() - cpu, result, stats))
        wall, cpu, result, stats = min(runs, key=lambda run: run[0])
        print(f"  {'stage':<15} {'wall s':>7} {'CPU s':>7}")
        for stage, seconds in stats.seconds.items():
            print(f"  {stage:<15} {seconds:7.2f} {stats.cpu_seconds[stage]:7.2f}")
        goal_wall = wall - stats.seconds["obj"]
        goal_cpu = cpu - stats.cpu_seconds["obj"]
        print(f"  {'all stages':<15} {wall:7.2f} {cpu:7.2f}")
        print(f"  {'goal stages':<15} {goal_wall:7.2f} {goal_cpu:7.2f}  (all but OBJ) -> goal <= {GOAL_SECONDS:.0f} s "
              f"wall: {'met' if goal_wall <= GOAL_SECONDS else 'MISSED'}")
        print(f"marching cubes {stats.marching_cubes_faces} faces -> {stats.faces} faces, {stats.vertices} vertices, "
              f"{stats.charts} charts, watertight {stats.watertight}, volume {stats.volume_m3 * 1e6:.0f} cm^3")
        print(f"files: GLB {result.glb.stat().st_size / 1e6:.2f} MB, OBJ {result.obj.stat().st_size / 1e6:.2f} MB, "
              f"PNG {result.texture.stat().st_size / 1e6:.2f} MB")
        if args.field == "head":
            print(accuracy_against_the_head(result.glb))


if __name__ == "__main__":
    main()
