"""Pieces of the Blender scripts that run jobs against a real server (test_generate,
test_sequence, test_previews): running one with the server's address (and restarting the
server when it says so), driving the job timer, and timing the tick that applies one
preview (also benchmarks/bench_preview_tick.py)."""

from __future__ import annotations

import json
import socket
import threading
import time

from blender_runner import run_blender


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_against(script, server, photo, tmp_path, timeout=240, **extra) -> dict:
    """Run `script` in Blender with json args: the server's url and token, the photo, a
    results folder, where to save vertices, a URL nothing answers at, and `extra`."""
    args = {**extra, "url": server.url, "token": server.token_file.read_text().strip(), "photo": str(photo),
            "results": str(tmp_path / "results"), "vertices": str(tmp_path / "vertices.npz"),
            "dead_url": f"http://127.0.0.1:{_free_port()}"}
    return run_blender(script, tmp_path, json.dumps(args), timeout=timeout)


def run_with_restart(script, server, photo, tmp_path, **extra) -> dict:
    """run_against, restarting the server (stop, start on the same data) once the script
    touches args["marker"]."""
    marker = tmp_path / "restart-now"

    def restart_when_marked():
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        server.stop()
        server.start()

    restarter = threading.Thread(target=restart_when_marked)
    restarter.start()
    try:
        return run_against(script, server, photo, tmp_path, marker=str(marker), **extra)
    finally:
        marker.touch()
        restarter.join()


WORLD_VERTICES = """
def world_vertices(obj):
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    co = np.empty(len(evaluated.data.vertices) * 3, dtype=np.float64)
    evaluated.data.vertices.foreach_get("co", co)
    matrix = np.array(obj.matrix_world)
    return co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
"""

DRIVE = """
def drive(runner_scene_name, on_first_tick=None, timeout=60.0, on_tick=None, cpu_ms=None):
    # Background Blender has no event loop, so call the timer callback as Blender would,
    # timing each call on this (the UI) thread; on_tick runs after every tick. cpu_ms, if
    # given, gets each tick's CPU time on this thread (its work, without the waits a loaded
    # machine adds to its wall time).
    durations, first, deadline = [], True, time.monotonic() + timeout
    while time.monotonic() < deadline:
        start, start_cpu = time.perf_counter(), time.thread_time()
        again = generate_ops.tick(runner_scene_name)
        durations.append((time.perf_counter() - start) * 1000.0)
        if cpu_ms is not None:
            cpu_ms.append((time.thread_time() - start_cpu) * 1000.0)
        if first and on_first_tick:
            on_first_tick()
        if on_tick:
            on_tick()
        first = False
        if again is None:
            return durations
        time.sleep(again)
    raise TimeoutError("job did not end")
"""

PREVIEW_TICK = """
import time
from joker_blender import generate_ops, jobs

def preview_tick(scene_name, path, job_id="sizes"):
    # The tick that applies one preview message, as during a job: a runner that is never
    # started stands in for the worker, its queue holding the message the worker would send.
    # (wall ms, CPU ms on this thread)
    runner = jobs.JobRunner(None)
    runner.messages.put(jobs.Message("preview", job_id, files=[path]))
    generate_ops._runners[scene_name] = (runner, generate_ops.job_handler(scene_name, on_done=None))
    start, start_cpu = time.perf_counter(), time.thread_time()
    generate_ops.tick(scene_name)
    return (time.perf_counter() - start) * 1000.0, (time.thread_time() - start_cpu) * 1000.0
"""
