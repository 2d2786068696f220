"""Batches: many references x expressions x prompts from one JSON/YAML spec, resumable.

    references: [photos/ada.jpg, photos/bo.png]   # relative to the spec file
    expressions: [neutral, scream]                # preset names (default: neutral)
    prompts: ["", "tongue out"]                   # default: one empty prompt
    job: {quality: preview, seed: 0}              # shared JobSpec fields
    items:                                        # and/or explicit items
      - {reference: photos/cy.jpg, name: cy_wink, spec: {preset: wink, prompt: "a wink"}}

Each item becomes `<out>/<name>/`, a joker.api.generate job folder. Such a folder only
exists when the item finished (generate renames it into place), so a batch that is run
again skips exactly the finished items: an interrupted batch resumes where it stopped.
`<out>/batch_state.json` says what each item did; a bad item fails alone with one line.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from joker_core.errors import JokerError
from joker_core.files import input_file
from joker_core.protocol import FieldError, JobSpec, ProgressEvent

from .generation.output import failed_folder, write_json

log = logging.getLogger("joker.batch")
STATE_NAME = "batch_state.json"
_KEYS = ("references", "expressions", "prompts", "job", "items")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class BatchItem:
    name: str               # its output folder's name
    reference: Path
    spec: Any               # JobSpec fields, validated when the item runs: a bad one fails alone


@dataclass(frozen=True)
class ItemOutcome:
    name: str
    state: str              # "done", "skipped" (done before), "failed"
    error: str | None = None


def read_batch(path: Path) -> list[BatchItem]:
    """The items of a batch spec file (.json, .yaml or .yml)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JokerError(f"cannot read batch spec {path} ({exc})", "give the path of a JSON or YAML batch spec") from exc
    data = _parse(text, path)
    if not isinstance(data, dict):
        raise JokerError(f"batch spec {path.name} is not a mapping", f"write it as an object with {', '.join(_KEYS)}")
    unknown = sorted(str(key) for key in data if key not in _KEYS)
    if unknown:
        raise JokerError(f"batch spec {path.name}: {unknown[0]!r} is not a known field", f"use only {', '.join(_KEYS)}")
    items = _crossed(data, path.parent) + _listed(data.get("items", []), path.parent)
    if not items:
        raise JokerError(f"batch spec {path.name} names no items", "give references (and expressions), or items")
    names = [item.name for item in items]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise JokerError(f"batch spec {path.name}: two items are both named {repeated[0]!r}",
                         "give each item its own name")
    return items


def _parse(text: str, path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise _invalid(path, exc) from exc
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)  # data only: no tags that build Python objects
        except yaml.YAMLError as exc:
            raise _invalid(path, exc) from exc
    raise JokerError(f"batch spec {path.name} is neither .json nor .yaml", "name it batch.json or batch.yaml")


def _invalid(path: Path, error: Exception) -> JokerError:
    where = " ".join(str(error).split())[:160]
    return JokerError(f"batch spec {path.name} is not valid ({where})", "fix the syntax at the place named")


def _list(data: dict, key: str, default: list) -> list:
    value = data.get(key, default)
    if not isinstance(value, list):
        raise JokerError(f"batch field {key!r} is not a list", f"write {key}: [ ... ]")
    return value


def _crossed(data: dict, base: Path) -> list[BatchItem]:
    job = data.get("job", {})
    if not isinstance(job, dict):
        raise JokerError("batch field 'job' is not a mapping", "write job: {quality: preview, ...}")
    prompts = _list(data, "prompts", [""])
    items = []
    for reference in _list(data, "references", []):
        for expression in _list(data, "expressions", ["neutral"]):
            for index, prompt in enumerate(prompts):
                name = f"{Path(str(reference)).stem}_{expression}" + (f"_p{index}" if len(prompts) > 1 else "")
                items.append(BatchItem(_safe(name), base / str(reference),
                                       {**job, "preset": expression, "prompt": prompt}))
    return items


def _listed(entries: Any, base: Path) -> list[BatchItem]:
    if not isinstance(entries, list):
        raise JokerError("batch field 'items' is not a list", "write items: [{reference, spec, name?}, ...]")
    items = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "reference" not in entry:
            raise JokerError(f"batch item {index} has no reference", "give each item reference: PHOTO")
        reference = Path(str(entry["reference"]))
        name = entry.get("name") or f"{reference.stem}_{index}"
        items.append(BatchItem(_safe(str(name)), base / reference, entry.get("spec", {})))
    return items


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("._") or "item"


def run_batch(items: list[BatchItem], out_dir: Path, *, tuning=None,
              progress: Callable[[str, ProgressEvent], None] | None = None,
              on_outcome: Callable[[ItemOutcome], None] | None = None,
              ray_address: str | None = None) -> list[ItemOutcome]:
    """Run every item not finished before; `progress(item name, event)`. An interrupt
    (KeyboardInterrupt) stops the batch: finished items stay, the interrupted ones rerun.
    With `ray_address` ("local", "auto", "ray://host:port") the items run at once on a Ray
    cluster (joker.batch_ray), each where its folder's files come back from."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / STATE_NAME
    state = _read_state(state_path)
    outcomes: dict[str, ItemOutcome] = {}

    def record(outcome: ItemOutcome, item: BatchItem | None = None) -> None:
        if item is not None:  # ran now (skipped ones keep what they had)
            state[item.name] = {"state": outcome.state, "error": outcome.error, "reference": str(item.reference),
                                "finished_at": time.time()}
            write_json(state_path, {"items": state})
        outcomes[outcome.name] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    todo = []
    for item in items:
        if is_finished(out_dir / item.name):
            record(ItemOutcome(item.name, "skipped"))
        else:
            todo.append(item)
    if ray_address is None:
        from .api import generate

        for item in todo:
            record(_run_item(generate, item, out_dir / item.name, tuning, progress), item)
    else:
        from .batch_ray import run_on_ray

        run_on_ray(todo, out_dir, tuning, ray_address, record)
    return [outcomes[item.name] for item in items]


def is_finished(folder: Path) -> bool:
    """generate renames a job folder into place when it ends, with its metrics."""
    return folder.is_dir() and (folder / "metrics.json").is_file()


def checked_spec(item: BatchItem) -> JobSpec:
    """The item's spec, parsed; FieldError for a bad spec or a missing photo."""
    spec = JobSpec.from_dict(item.spec, f"{item.name}.spec")
    try:
        input_file(item.reference, "photo")
    except JokerError as error:
        raise FieldError(f"{item.name}.reference", error.problem,
                         f"{error.fix} (relative to the batch spec), or remove the item") from None
    return spec


def item_failed(item: BatchItem, error: JokerError) -> ItemOutcome:
    log.warning("batch item %s failed: %s", item.name, error)
    return ItemOutcome(item.name, "failed", str(error))


def item_done(item: BatchItem, folder: Path) -> ItemOutcome:
    shutil.rmtree(failed_folder(folder), ignore_errors=True)  # an earlier, interrupted try
    return ItemOutcome(item.name, "done")


def _run_item(generate, item: BatchItem, folder: Path, tuning, progress) -> ItemOutcome:
    report = (lambda event: progress(item.name, event)) if progress else None
    try:
        generate(item.reference, spec=checked_spec(item), out_dir=folder, progress=report, tuning=tuning)
    except JokerError as error:
        return item_failed(item, error)
    return item_done(item, folder)


def _read_state(path: Path) -> dict[str, dict]:
    try:
        items = json.loads(path.read_text(encoding="utf-8")).get("items", {})
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as exc:
        raise JokerError(f"the batch state {path} is damaged ({exc})",
                         "delete it; finished items are still recognised by their folders") from exc
    return items if isinstance(items, dict) else {}
