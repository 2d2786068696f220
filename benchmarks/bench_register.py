"""The rig's topology fitted to the distilled surface (issue 14's "Show"), on this machine.

Head: the astronaut screaming through the projection prior, as bench_generate.py makes it,
with the registered head besides the marching-cubes one. Prints the registered vertices'
distance to the marching-cubes surface (mean, p95, max; goal mean <= 1 mm, p95 <= 3 mm at
preview), the rig's own before fitting, flipped faces (goal 0), the registration's time,
and the mesh-render PSNR of both meshes against the targets (the same metric as
bench_generate's mesh figures; goal: registered within 0.5 dB of marching cubes).

Sequence (--frames N, N > 0): bench_sequence.py's warm-started expression ramp with the
rig's topology; per consecutive pair of frames, the registered vertices' motion minus the
rig's own, over the vertices the rig moved less than 0.1 mm (goal: mean below 0.5 mm; the
overall figure leaves out held pairs, where nothing can move).

Then the sequence's one texture: each frame's registered head rendered with the first
frame's texture, the per-texel median or mean over the frames, and its own, against that
frame's targets (mesh PSNR at held-out views).

    .venv/bin/python benchmarks/bench_register.py [--quality preview] [--test-size] [--frames 12] [--threads N]
                                                  [--surface-check]
    .venv/bin/python benchmarks/bench_register.py --glb 120 [--per-frame-textures]

--test-size runs the tests' head-sized engine (tests/tiny_engine.py SMALL; sequences:
bench_sequence.py --quick's preset): a smoke figure, not the goal's. --surface-check adds
the head's distances to its field's own surface from a 4x finer grid (what the distance to
the marching-cubes mesh measures). --glb N times sequence.glb's writer per frame up to N
frames, against re-assembling every frame (docs/rig_topology.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from skimage import data

import joker.api
import joker.sequence.engine
from joker.generation.mesh_metrics import held_out_cameras, mesh_fidelity, psnr
from joker.generation.runner import Tuning, make_head
from joker.mesh.cleanup import keep_large_components
from joker.mesh.extract import marching_cubes, sample_density_grid
from joker.mesh.pipeline import MeshSettings
from joker.mesh.register import RegisterSettings, register_head
from joker.mesh.surface import Surface
from joker.generation.turntable import render_unlit
from joker.sequence import generate_sequence
from joker_core.presets import get_preset
from joker_core.protocol import JobSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench_sequence import quick, sequence_spec  # noqa: E402
from tiny_engine import SMALL  # noqa: E402

STILL_M = 1e-4  # a rig vertex that moved less than this between two frames did not move


class HeadSpy:
    """Keeps every (job, head) make_head made."""

    def __init__(self) -> None:
        self.made: list = []

    def __call__(self, job, *args, **kwargs):
        head = make_head(job, *args, **kwargs)
        self.made.append((job, head))
        return head


def single_head(args, tuning: Tuning) -> None:
    spy = HeadSpy()
    joker.api.make_head = spy
    spec = JobSpec.from_dict({"preset": "scream", "prompt": get_preset("scream").prompt, "quality": args.quality,
                              "device": args.device})
    started = time.perf_counter()
    joker.api.generate(data.astronaut(), spec=spec, out_dir=Path(tempfile.mkdtemp(prefix="bench_register_")) / "h",
                       tuning=tuning)
    wall = time.perf_counter() - started
    (job, head), = spy.made
    figures = head.registration.figures
    print(f"== registered head: astronaut, scream, {'test size' if args.test_size else args.quality} ==")
    mm = {key: 1e3 * value for key, value in figures.items() if key.endswith("_m")}
    print(f"distance to the marching-cubes surface: mean {mm['registered_to_mesh_mean_m']:.3f} mm (goal <= 1), "
          f"p95 {mm['registered_to_mesh_p95_m']:.3f} mm (goal <= 3), max {mm['registered_to_mesh_max_m']:.2f} mm")
    print(f"  the posed rig before fitting: mean {mm['rig_to_mesh_mean_m']:.3f} mm, p95 {mm['rig_to_mesh_p95_m']:.3f} mm")
    print(f"flipped faces: {figures['flipped_faces']} (goal 0); surface found for "
          f"{figures['surface_found_share']:.1%} of {figures['fitted_vertices']} vertices")
    print(f"registration + rig-UV bake CPU: {head.figures['mesh']['cpu_seconds'].get('register', float('nan')):.1f} s "
          f"(job wall {wall:.0f} s)")
    marching = mesh_fidelity(job, head.distillation, head.mesh, job.spec.seed)
    registered = mesh_fidelity(job, head.distillation, head.rig_mesh, job.spec.seed)
    for key, label in (("mesh_psnr_db", "held out"), ("mesh_back_psnr_db", "back")):
        print(f"mesh PSNR {label}: marching cubes {marching[key]:.2f} dB, registered {registered[key]:.2f} dB "
              f"({registered[key] - marching[key]:+.2f} dB; goal >= -0.5)")
    if args.surface_check:
        surface_check(job, head, tuning.mesh or MeshSettings(iso_level=job.preset.surface_density))


def surface_check(job, head, settings: MeshSettings) -> None:
    """What the distance to the marching-cubes mesh measures: the same field's surface from
    a grid of 4x the cells (no blur, no decimation) as the reference, against the shipped
    mesh and the registered head; and a registration on the shipped mesh alone (no round
    on the field)."""
    density, registration = head.distillation.field.density, head.registration
    fine_resolution = min(4 * settings.resolution, 256)
    grid = sample_density_grid(density, job.box, fine_resolution, iso_level=settings.iso_level,
                               coarse_stride=4, device=settings.device)
    fine = Surface(*keep_large_components(*marching_cubes(grid, settings.iso_level, job.box), 1.0))
    shipped = Surface(head.mesh.vertices, head.mesh.faces)
    skin = registration.vertices[registration.moving]
    near_skin = cKDTree(skin).query(fine.corners.mean(axis=1))[0] < 0.002  # the part the rig covers
    mesh_only = register_head(job.posed_vertices, job.model.faces, registration.moving, head.mesh.vertices,
                              head.mesh.faces, density, settings.iso_level,
                              RegisterSettings(field_window=0.0), device=settings.device)

    def line(label, distance):
        print(f"  {label}: mean {1e3 * distance.mean():.3f} mm, p95 {1e3 * np.percentile(distance, 95):.3f} mm")
    print(f"== the surface itself (a {fine_resolution}^3 grid of the same field, unblurred, undecimated) ==")
    line("the shipped marching-cubes mesh's faces near the skin -> that surface",
         fine.closest(shipped.corners.mean(axis=1)[shipped.tree.query(skin)[1]])[1])
    line("that surface near the skin -> the shipped mesh", shipped.closest(fine.corners.mean(axis=1)[near_skin])[1])
    line("registered skin -> that surface", fine.closest(skin)[1])
    line("registered on the shipped mesh alone (no field round) -> the shipped mesh",
         shipped.closest(mesh_only.vertices[mesh_only.moving])[1])
    line("registered on the shipped mesh alone -> that surface", fine.closest(mesh_only.vertices[mesh_only.moving])[1])


def sequence(args, tuning: Tuning) -> None:
    spy = HeadSpy()
    joker.sequence.engine.make_head = spy
    spec = sequence_spec(args.frames, args.device, args.quality)
    started = time.perf_counter()
    generate_sequence(data.astronaut(), spec=spec, out_dir=Path(tempfile.mkdtemp(prefix="bench_register_")) / "s",
                      tuning=tuning)
    print(f"\n== {args.frames}-frame ramp, warm-started, rig topology ({time.perf_counter() - started:.0f} s) ==")
    print("pair  still_vertices  residual_mean_mm  residual_p95_mm  rig_motion_max_mm")
    residuals = []  # the pairs where the rig moved somewhere: a held pair (the same field) cannot move
    for index, ((_, before), (_, after)) in enumerate(zip(spy.made, spy.made[1:]), start=2):
        rig_before = before.registration.vertices - before.registration.offset
        rig_after = after.registration.vertices - after.registration.offset
        rig_motion = rig_after - rig_before
        still = (np.linalg.norm(rig_motion, axis=1) < STILL_M) & after.registration.moving
        residual = np.linalg.norm((after.registration.vertices - before.registration.vertices) - rig_motion, axis=1)[still]
        if not still[after.registration.moving].all():
            residuals.append(residual)
        if len(residual):
            print(f"{index - 1:2d}-{index:<2d} {still.sum():14d}  {1e3 * residual.mean():16.3f}  "
                  f"{1e3 * np.percentile(residual, 95):15.3f}  {1e3 * np.linalg.norm(rig_motion, axis=1).max():17.2f}")
    every = np.concatenate(residuals) if residuals else np.zeros(0)
    if len(every):
        print(f"jitter where the rig did not move, over the pairs where it moved elsewhere: mean "
              f"{1e3 * every.mean():.3f} mm (goal < 0.5), p95 {1e3 * np.percentile(every, 95):.3f} mm "
              f"over {len(every)} vertex-pairs")
    texture_choice(spy.made)


def texture_choice(made: list) -> None:
    """sequence.glb's one texture: each frame's registered head rendered with the first
    frame's texture, a per-texel merge across the frames, or its own (the per-frame
    option), against that frame's targets (the prior's renders at held-out views)."""
    textures = np.stack([head.rig_mesh.texture for _, head in made]).astype(np.float64)
    shared = {"first": textures[0], "median": np.median(textures, axis=0), "mean": textures.mean(axis=0)}
    shared = {name: texture.round().astype(np.uint8) for name, texture in shared.items()}
    print("\n== one texture for the sequence: mesh PSNR (dB) per frame, held-out views ==")
    print("frame  " + "  ".join(f"{name:>7}" for name in [*shared, "own"]))
    rows = []
    for index, (job, head) in enumerate(made, start=1):
        cameras = held_out_cameras(job, job.spec.seed)
        background = tuple(getattr(job.prior, "background", (1.0, 1.0, 1.0)))
        expected = job.prior.render(torch.from_numpy(job.posed_vertices).float(), cameras).cpu()
        row = [psnr(render_unlit(dataclasses.replace(head.rig_mesh, texture=texture), cameras, background), expected)
               for texture in [*shared.values(), head.rig_mesh.texture]]
        rows.append(row)
        print(f"{index:5d}  " + "  ".join(f"{value:7.2f}" for value in row))
    print("mean   " + "  ".join(f"{value:7.2f}" for value in np.mean(rows, axis=0)))


def glb_writes(frames: int, per_frame_textures: bool) -> None:
    """sequence.glb's cost per frame as a sequence grows: the kept writer (a frame encodes
    its own data, then the file is written out) against re-assembling every frame's data
    (as the writer did before). Synthetic heads: the demo head's rig topology, 1024^2
    textures of noise (PNG's worst case)."""
    from joker.mesh.animated import AnimationSettings, SequenceGlb, write_sequence_glb
    from joker.mesh.export import TexturedMesh
    from joker.mesh.rig_uv import rig_uv_layout
    from joker_core.demo_head import load_demo_head

    model = load_demo_head()
    uv_mesh = rig_uv_layout(model, 1024).uv_mesh(model.v_template)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    heads = [TexturedMesh(uv_mesh.vertices + rng.normal(0, 1e-3, uv_mesh.vertices.shape), uv_mesh.faces, uv_mesh.uvs,
                          np.tile([0.0, 0.0, 1.0], (len(uv_mesh.vertices), 1)), texture) for _ in range(8)]
    settings = AnimationSettings(per_frame_textures=per_frame_textures)
    folder = Path(tempfile.mkdtemp(prefix="bench_glb_"))
    writer = SequenceGlb(folder / "kept" / "sequence.glb", heads[0], settings)
    (folder / "kept").mkdir()
    checkpoints = sorted({1, frames // 4, frames // 2, frames})
    print(f"\n== sequence.glb per frame, {len(uv_mesh.vertices)} vertices, 1024^2 texture, "
          f"per-frame textures {'on' if per_frame_textures else 'off'} ==")
    print("frames  file_MB  kept_s  rebuilt_s")
    for count in range(1, frames + 1):
        started = time.perf_counter()
        writer.add(count, heads[count % len(heads)])
        path = writer.write()
        kept = time.perf_counter() - started
        if count in checkpoints:
            started = time.perf_counter()
            write_sequence_glb(folder / "rebuilt.glb", [(n, heads[n % len(heads)]) for n in range(1, count + 1)],
                               settings)
            rebuilt = time.perf_counter() - started
            print(f"{count:6d}  {path.stat().st_size / 1e6:7.1f}  {kept:6.3f}  {rebuilt:9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", default="preview")
    parser.add_argument("--test-size", action="store_true", help="the tests' head-sized engine: a smoke figure")
    parser.add_argument("--frames", type=int, default=0, help="also a warm-started ramp of this many frames")
    parser.add_argument("--no-head", action="store_true", help="only the sequence")
    parser.add_argument("--surface-check", action="store_true",
                        help="also the head's distances to its field's surface on a 4x finer grid")
    parser.add_argument("--glb", type=int, default=0, help="only sequence.glb's cost per frame up to this many frames")
    parser.add_argument("--per-frame-textures", action="store_true", help="with --glb: per-frame textures on")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.glb:
        return glb_writes(args.glb, args.per_frame_textures)
    if not args.no_head:
        single_head(args, dataclasses.replace(SMALL if args.test_size else Tuning(), rig_topology=True))
    if args.frames:
        from joker.distill.schedule import preset
        tuned = quick(preset(args.quality)) if args.test_size else None
        sequence(args, Tuning(preset=tuned, rig_topology=True))


if __name__ == "__main__":
    main()
