"""`joker train-prior`: train the Joker diffusion prior on a dataset folder (docs/prior.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Train the Joker diffusion prior (accelerate; multi-GPU with `accelerate launch -m joker.cli train-prior`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, required=True, help="dataset folder (format: docs/prior.md)")
    parser.add_argument("--check-only", action="store_true", help="validate the dataset, list broken samples, stop")
    parser.add_argument("--init", type=Path, help="initial weights: an SD1.5 folder, our prior folder, or a checkpoint")
    parser.add_argument("--sd15", type=Path, help="SD1.5 folder, when --init is a released checkpoint")
    parser.add_argument("--vae", type=Path, help="separate VAE folder (published: sd-vae-ft-mse)")
    parser.add_argument("--out", type=Path, help="run folder: log.jsonl, samples/, checkpoints/, final/")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps in total (default: 1000)")
    parser.add_argument("--batch-size", type=int, default=1, help="samples per device per step (default: 1)")
    parser.add_argument("--lr", type=float, default=1e-5, help="learning rate (default: 1e-5, published)")
    parser.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (default: 1)")
    parser.add_argument("--precision", choices=("no", "fp16", "bf16"), default="no",
                        help="mixed precision (published: bf16; default: no)")
    parser.add_argument("--text-dropout", type=float, default=0.1, help="caption drop probability (default: 0.1)")
    parser.add_argument("--references", type=int, default=1, help="reference images per sample (default: 1)")
    parser.add_argument("--log-every", type=int, default=10, help="steps per log line (default: 10)")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps per checkpoint (default: 500)")
    parser.add_argument("--sample-every", type=int, default=0, help="steps per sample grid (default: 0, at the end)")
    parser.add_argument("--sample-steps", type=int, default=20, help="DDIM steps of the sample grids (default: 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--trainable", choices=("published", "all"), default="published",
                        help="published: the authors' parts (denoising UNet mid/up blocks, reference UNet but its "
                             "unused tail, ControlNet); all: the three modules whole (default: published)")
    parser.add_argument("--grad-clip", type=float, default=1.0,
                        help="max gradient norm, 0 for none (default: 1.0, published)")


def _check_only(dataset: Path) -> int:
    from joker.prior.training.dataset import sample_folders, validate_dataset

    broken = validate_dataset(dataset)
    for name, problems in broken.items():
        print(f"{name}: {'; '.join(problems)}")
    print(f"{len(sample_folders(dataset)) - len(broken)} good samples, {len(broken)} broken")
    return 1 if broken else 0


def run(args: argparse.Namespace) -> int:
    from joker_core.errors import JokerError

    if args.check_only:
        return _check_only(args.dataset)
    if args.out is None:
        raise JokerError("no run folder given", "pass --out FOLDER")
    from joker.prior.diffusion.loading import load_prior
    from joker.prior.training.loop import TrainingConfig, latest_checkpoint, resume_from, train

    config = TrainingConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                            gradient_accumulation=args.grad_accum, mixed_precision=args.precision,
                            text_dropout=args.text_dropout, references=args.references, log_every=args.log_every,
                            checkpoint_every=args.checkpoint_every, sample_every=args.sample_every,
                            sample_steps=args.sample_steps, seed=args.seed, trainable=args.trainable,
                            grad_clip=args.grad_clip or None)
    config.check()
    optimizer_state, step = None, 0
    if args.resume:
        checkpoint = latest_checkpoint(args.out)
        if checkpoint is None:
            raise JokerError(f"no checkpoint in {args.out} to resume from", "drop --resume to start a new run")
        model, optimizer_state, step = resume_from(checkpoint)
        print(f"resuming from step {step} ({checkpoint})")
    elif args.init is None:
        raise JokerError("no initial weights given", "pass --init with an SD1.5 folder (or --resume)")
    else:
        model = load_prior(args.init, args.sd15, args.vae)
    losses = train(model, args.dataset, args.out, config, optimizer_state, step)
    if losses:
        print(f"step {config.steps}: loss {losses[-1]:.4f}; trained prior in {args.out / 'final'}")
    return 0
