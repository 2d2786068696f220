"""The training dataset of the diffusion prior: format, validator, torch Dataset.

    DATASET/
      dataset.json              {"format": "joker-prior-dataset", "version": 1, "image_size": 512}
      samples/<id>/
        target.png              the frame to learn (RGB, image_size x image_size)
        normal.png              its normal map (joker_core.conventions encoding, same size)
        reference_0.png, ...    one or more other frames of the same person (same size)
        sample.json             {"caption": str, "camera": Camera.to_dict(), "rig": RigParams.to_dict()}

docs/prior.md describes it for people; this module is its one definition in code.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from joker_core.cameras import Camera
from joker_core.errors import JokerError
from joker_core.rig_params import RigParams

FORMAT = "joker-prior-dataset"
VERSION = 1
MANIFEST = "dataset.json"
SAMPLE_FILE = "sample.json"


@dataclass
class SampleFiles:
    folder: Path

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def target(self) -> Path:
        return self.folder / "target.png"

    @property
    def normal(self) -> Path:
        return self.folder / "normal.png"

    @property
    def references(self) -> list[Path]:
        return sorted(self.folder.glob("reference_*.png"))

    @property
    def meta(self) -> Path:
        return self.folder / SAMPLE_FILE


def read_manifest(root: Path) -> dict:
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        size = int(manifest["image_size"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise JokerError(f"{root / MANIFEST} is missing or malformed ({exc})",
                         f'write {{"format": "{FORMAT}", "version": {VERSION}, "image_size": 512}} there') from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION or size < 8:
        raise JokerError(f"{root / MANIFEST} does not describe a {FORMAT} version {VERSION} with a valid image_size",
                         "see docs/prior.md for the dataset format")
    return manifest


def sample_folders(root: Path) -> list[SampleFiles]:
    return [SampleFiles(folder) for folder in sorted((root / "samples").glob("*")) if folder.is_dir()]


def _image_problem(path: Path, size: int) -> str | None:
    if not path.is_file():
        return f"{path.name} is missing"
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            mode, (width, height) = image.mode, image.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        return f"{path.name} is not a readable image ({exc})"
    if mode != "RGB":
        return f"{path.name} is {mode}, not RGB"
    if (width, height) != (size, size):
        return f"{path.name} is {width}x{height}, not {size}x{size}"
    return None


def sample_problems(sample: SampleFiles, size: int) -> list[str]:
    """Everything wrong with one sample (empty when it is usable)."""
    problems = [problem for path in (sample.target, sample.normal, *sample.references)
                if (problem := _image_problem(path, size))]
    if not sample.references:
        problems.append("no reference_N.png")
    try:
        meta = json.loads(sample.meta.read_text())
        if not isinstance(meta.get("caption"), str):
            problems.append("caption is not a string")
        camera = Camera.from_dict(meta["camera"])
        if (camera.width, camera.height) != (size, size):
            problems.append(f"camera is {camera.width}x{camera.height}, not {size}x{size}")
        RigParams.from_dict(meta["rig"])
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        problems.append(f"{SAMPLE_FILE} is missing or not a JSON object ({exc})")
    except KeyError as exc:
        problems.append(f"{SAMPLE_FILE} lacks {exc}")
    except JokerError as error:
        problems.append(f"{SAMPLE_FILE}: {error.problem}")
    return problems


def validate_dataset(root: Path) -> dict[str, list[str]]:
    """Sample id -> its problems, for every broken sample (empty dict: all good)."""
    size = int(read_manifest(root)["image_size"])
    samples = sample_folders(root)
    if not samples:
        raise JokerError(f"dataset {root} has no samples/<id>/ folders", "see docs/prior.md for the dataset format")
    return {sample.id: problems for sample in samples if (problems := sample_problems(sample, size))}


def check_dataset(root: Path) -> None:
    """Raise one JokerError naming the broken samples, if any."""
    broken = validate_dataset(root)
    if broken:
        shown = "; ".join(f"{name}: {', '.join(problems)}" for name, problems in list(broken.items())[:5])
        more = f" and {len(broken) - 5} more" if len(broken) > 5 else ""
        raise JokerError(f"{len(broken)} broken samples in {root}: {shown}{more}",
                         "fix or remove those sample folders (`joker train-prior --check-only` lists them all)")


def _load_image(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float() / 255.0


class PriorDataset(torch.utils.data.Dataset):
    """Validated samples as dicts of tensors: target, normal (3 x S x S in [0, 1]),
    references (R x 3 x S x S, drawn from the sample's references), caption."""

    def __init__(self, root: Path, references: int = 1, seed: int = 0) -> None:
        check_dataset(root)
        self.samples = sample_folders(root)
        self.image_size = int(read_manifest(root)["image_size"])
        self.references = references
        self._random = random.Random(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def camera(self, index: int) -> Camera:
        return Camera.from_dict(json.loads(self.samples[index].meta.read_text())["camera"])

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        chosen = [self._random.choice(sample.references) for _ in range(self.references)]
        return {"target": _load_image(sample.target), "normal": _load_image(sample.normal),
                "references": torch.stack([_load_image(path) for path in chosen]),
                "caption": json.loads(sample.meta.read_text())["caption"]}
