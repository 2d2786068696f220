"""Server latency on this machine, against a real `joker serve` on a loopback port:

- submit -> first progress event: POST /v1/jobs until the first "progress" event arrives
  on the job's event stream (queue, dispatch to the warm worker, job start, event fan-out);
- status poll while a job runs: GET /v1/jobs/{id} through the stdlib client (a new
  connection per request, as the Blender add-on does) while a job reports progress
  up to 200 times a second, with a preview every 100 steps (goal: p95 <= 50 ms); then
  the same from 20 and from 50 clients at once;
- the server's peak RSS for the largest body it accepts (a --max-upload-mb JSON submit
  whose photo is a 4000 x 4000 noise PNG), one at a time and four at once: the rise of
  the server process's peak RSS (VmHWM, reset first) over its RSS before, as a multiple
  of the body size (goal: <= 3x).

    .venv/bin/python benchmarks/bench_service.py [--jobs 20] [--polls 500] [--job-function M:F]

With --ray, instead: the Ray executor (docs/cluster.md) on a local Ray instance with 2 CPUs,
side by side in one run: throughput in jobs per minute with 1 and with 2 slots (real
test-sized engine jobs, tests/tiny_engine.py; goal: >= 1.7x with 2 slots), and the time
from submit to end of a quick job on Ray against the local executor (the per-job overhead).

    .venv/bin/python benchmarks/bench_service.py --ray [--jobs 4] [--quick-jobs 10]

The default job function is the service tests' demo job (real files, real progress, no
model), so the figures are the server's own overhead; with --job-function
joker.api:generate the first figure includes the engine's preparation (rig, views, prior).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "service"))
from service_harness import Server, noise_submission, peak_rss_rise  # noqa: E402  (the tests' real-server harness)

from joker_core.client import Conflict  # noqa: E402
from joker_core.protocol import JobState  # noqa: E402


# The demo job reads its behaviour from the prompt; the engine gets a tiny preview job.
QUICK_JOB = {"prompt": "steps=3 step_s=0", "quality": "preview", "views": {"grid": [2, 1], "size": 32}}
LONG_JOB = {**QUICK_JOB, "prompt": "steps=100000 step_s=0.005 preview_every=100"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def describe(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(f"{name:<40} n={len(ms):<4} p50={statistics.median(ms):7.1f} ms  p95={percentile(ms, 95):7.1f} ms  "
          f"max={max(ms):7.1f} ms")


def portrait() -> bytes:
    """A real face, so the engine's photo alignment finds one."""
    from skimage import data

    from joker_core.png import encode_png

    return encode_png(data.astronaut())


def submit_to_first_progress(server: Server, jobs: int) -> list[float]:
    client, photo, latencies = server.client(), portrait(), []
    for _ in range(jobs):
        started = time.perf_counter()
        job = client.submit(QUICK_JOB, photo)
        for kind, data in client.events(job.id):
            # a job can report before the stream opens; the stream's opening status shows it
            if kind == "progress" or data.get("stage") not in ("queued", "starting"):
                latencies.append(time.perf_counter() - started)
                break
        _stop(client, job.id)
    return latencies


def _stop(client, job_id: str) -> None:
    """Cancel a job unless it has ended, and wait until it has."""
    try:
        client.cancel(job_id)
    except Conflict:
        return
    while not client.status(job_id).state.finished:
        time.sleep(0.01)


def status_polls_while_running(server: Server, polls: int) -> list[float]:
    client = server.client()
    job = client.submit(LONG_JOB, portrait())
    while (status := client.status(job.id)).progress < 0.05:  # the engine's distillation starts at 5 %
        if status.state.finished:
            raise SystemExit(f"the job ended before the measurement: {status.error}")
        time.sleep(0.01)
    latencies = []
    for _ in range(polls):
        started = time.perf_counter()
        status = client.status(job.id)
        latencies.append(time.perf_counter() - started)
        assert status.state is JobState.RUNNING
    _stop(client, job.id)
    return latencies


def concurrent_polls(server: Server, clients: int, polls: int) -> list[float]:
    client = server.client()
    job = client.submit(LONG_JOB, portrait())
    latencies: list[float] = []

    def poll() -> None:
        own = server.client()
        for _ in range(polls):
            started = time.perf_counter()
            own.status(job.id)
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=poll) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _stop(client, job.id)
    return latencies


def run_jobs(executor_kind: str, job_function: str, spec: dict, jobs: int, slots: int | None = None) -> float:
    """Submit `jobs` at once to a fresh executor, warmed by one job per runner; the seconds
    from the first submit to the last job's end. Every job must succeed."""
    from joker.service.executor import LocalExecutor
    from joker.service.ray_executor import RayExecutor, RaySettings
    from joker.service.store import JobStore
    from joker.service.worker import EngineFunctions
    from joker_core.protocol import JobSpec

    with tempfile.TemporaryDirectory() as data_dir:
        store = JobStore(Path(data_dir) / "jobs.sqlite3", Path(data_dir) / "jobs")
        functions = EngineFunctions(job_function)
        if executor_kind == "ray":
            executor = RayExecutor(store, lambda *_: None, functions, "cpu", settings=RaySettings(slots=slots))
        else:
            executor = LocalExecutor(store, lambda *_: None, functions, "cpu")
        executor.start()
        try:
            wait_for_all(store, [store.create(JobSpec.from_dict(spec), {"reference.png": portrait()}).id
                                 for _ in range(executor.slots)], executor)  # warm: every runner has run a job
            started = time.perf_counter()
            wait_for_all(store, [store.create(JobSpec.from_dict(spec), {"reference.png": portrait()}).id
                                 for _ in range(jobs)], executor)
            return time.perf_counter() - started
        finally:
            executor.stop()
            store.close()


def wait_for_all(store, ids: list[str], executor) -> None:
    executor.notify()
    waiting = set(ids)
    while waiting:
        for job_id in list(waiting):
            if (status := store.get(job_id)).state.finished:
                if status.state is not JobState.SUCCEEDED:
                    raise SystemExit(f"a benchmark job ended {status.state.value}: {status.error}")
                waiting.discard(job_id)
        time.sleep(0.02)


def ray_figures(jobs: int, quick_jobs: int) -> None:
    import os

    import ray

    here = Path(__file__).resolve().parents[1] / "tests"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(here / "service"), str(here), os.environ.get("PYTHONPATH", "")])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tiny = {"quality": "preview", "device": "cpu"}
        one = run_jobs("ray", "tiny_engine:generate", tiny, jobs, slots=1)
        two = run_jobs("ray", "tiny_engine:generate", tiny, jobs, slots=2)
        per_minute = [60.0 * jobs / seconds for seconds in (one, two)]
        print(f"throughput, {jobs} tiny engine jobs   1 slot: {per_minute[0]:.2f} jobs/min   "
              f"2 slots: {per_minute[1]:.2f} jobs/min   ratio {per_minute[1] / per_minute[0]:.2f}x (goal >= 1.7x)")
        quick = {**QUICK_JOB, "prompt": "steps=3 step_s=0"}
        local = run_jobs("local", "demo_job:generate", quick, quick_jobs)
        on_ray = run_jobs("ray", "demo_job:generate", quick, quick_jobs, slots=1)
        local_ms, ray_ms = (1000 * seconds / quick_jobs for seconds in (local, on_ray))
        print(f"per quick job, {quick_jobs} queued at once   local: {local_ms:.0f} ms   Ray (1 slot): {ray_ms:.0f} ms   "
              f"Ray overhead {ray_ms - local_ms:+.0f} ms per job")
    finally:
        ray.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=None, help="jobs per measurement (default 20; 4 with --ray)")
    parser.add_argument("--polls", type=int, default=500)
    parser.add_argument("--job-function", default="demo_job:generate")
    parser.add_argument("--ray", action="store_true", help="the Ray executor's figures instead (see above)")
    parser.add_argument("--quick-jobs", type=int, default=10, help="with --ray: jobs for the overhead figure")
    args = parser.parse_args()
    if args.ray:
        ray_figures(args.jobs or 4, args.quick_jobs)
        return 0
    args.jobs = args.jobs or 20
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(Path(data_dir), "--job-function", args.job_function).start()  # last one wins
        try:
            describe("submit -> first progress event", submit_to_first_progress(server, args.jobs))
            describe("status poll, job running", status_polls_while_running(server, args.polls))
            for clients in (20, 50):
                describe(f"status poll, {clients} clients, job running",
                         concurrent_polls(server, clients, max(1, args.polls // clients)))
            body = noise_submission(4000)  # 61 MiB: the largest under the default --max-upload-mb (64)
            for at_once in (1, 4):
                rise = peak_rss_rise(server, body, at_once)
                share = " (goal <= 3x)" if at_once == 1 else f", {rise / (at_once * len(body)):.2f}x all {at_once}"
                print(f"server peak RSS rise, {at_once} x {len(body) / 2**20:.0f} MiB body at once: "
                      f"{rise / 2**20:.0f} MiB = {rise / len(body):.2f}x one body{share}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
