"""A batch on a Ray cluster: every unfinished item becomes a Ray task at once, asking for a
GPU when the cluster has GPUs, else a CPU, so Ray runs as many at a time as fit.

Nothing assumes a shared filesystem: a task gets its photo's bytes and its spec, runs
joker.api.generate in a scratch folder on its worker, and returns that folder's files as
bytes; this process writes them into `<out>/<name>/` atomically, so resuming works as for
a local batch. An item that fails keeps what the engine left in `<out>/<name>.failed/`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from joker_core.errors import JokerError
from joker_core.files import atomic_directory
from joker_core.protocol import JobSpec, SequenceSpec

from .batch import BatchItem, ItemOutcome, checked_spec, item_done, item_failed
from .generation.output import failed_folder


def run_on_ray(items: list[BatchItem], out_dir: Path, tuning, address: str,
               record: Callable[[ItemOutcome, BatchItem], None]) -> None:
    import ray

    from .api import generate as generate_head

    connect_to(address)
    generate = remote_runner()
    pending: dict[Any, BatchItem] = {}
    for item in items:
        try:
            spec = checked_spec(item)
        except JokerError as error:
            record(item_failed(item, error), item)
            continue
        pending[generate.remote(generate_head, item.reference.name, item.reference.read_bytes(), spec, tuning)] = item
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            item = pending.pop(done[0])
            record(_collect(done[0], item, out_dir / item.name), item)
    except BaseException:  # Ctrl-C: finished items are written; the rest rerun next time
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def connect_to(address: str) -> None:
    """`address` as the CLI takes it: "local" starts Ray on this machine."""
    from .service.ray_executor import connect

    connect(None if address == "local" else address)


def remote_runner():
    """run_in_scratch as a Ray task: a GPU each when the cluster has GPUs, else a CPU."""
    import ray

    from .service.ray_executor import cluster_plan

    _, resources = cluster_plan(None, "auto")
    return ray.remote(run_in_scratch).options(**resources, max_retries=0)


def _collect(ref, item: BatchItem, folder: Path) -> ItemOutcome:
    import ray

    try:
        error, files = ray.get(ref)
    except ray.exceptions.RayTaskError as bug:  # the engine raised something not a JokerError
        return item_failed(item, JokerError(f"the engine failed: {_first_line(bug.cause or bug)}",
                                            "this is a bug, please report it with the batch's log"))
    except ray.exceptions.RayError as lost:  # the worker or its node died
        return item_failed(item, JokerError(f"the Ray worker running it died ({_first_line(lost)})",
                                            "check that node's Ray logs, then run the batch again to redo it"))
    if error is not None:
        write_folder(failed_folder(folder), files)
        return item_failed(item, JokerError(error[0], error[1]))
    write_folder(folder, files)
    return item_done(item, folder)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def write_folder(folder: Path, files: dict[str, bytes]) -> None:
    with atomic_directory(folder, overwrite=True) as staging:
        for name, data in files.items():
            path = (staging / name).resolve()
            if not path.is_relative_to(staging.resolve()):
                raise JokerError(f"a Ray worker returned the file {name!r} outside its item's folder",
                                 "run the batch with the same joker version on every node")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def run_in_scratch(generate: Callable[..., Any], photo_name: str, photo: bytes, spec: JobSpec | SequenceSpec,
                   tuning) -> tuple[tuple[str, str] | None, dict[str, bytes]]:
    """On a Ray worker: one job (joker.api.generate or generate_sequence) in a scratch
    folder. Returns ((problem, fix) or None, the files of the job folder, or of its .failed
    folder when a head failed: a sequence keeps its finished frames in place)."""
    scratch = Path(tempfile.mkdtemp(prefix="joker-batch-"))
    try:
        reference = scratch / "inputs" / Path(photo_name).name
        reference.parent.mkdir()
        reference.write_bytes(photo)
        out = scratch / "item"
        try:
            generate(reference, spec=spec, out_dir=out, tuning=tuning)
        except JokerError as error:
            return (error.problem, error.fix), _files(out) or _files(failed_folder(out))
        return None, _files(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _files(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file() and not path.is_symlink()}
