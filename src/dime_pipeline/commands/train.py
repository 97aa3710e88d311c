"""``dime-pipeline train``: fit DIME on packed datasets (Lightning), resumable, exports a model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# Command-line shortcuts for settings of the training config, by the setting's own name; where
# each one lives in the config is the typed model's to say (dime.settings.leaf_keys).
SHORTCUTS = (
    "seed",
    "max_epochs",
    "accelerator",
    "devices",
    "precision",
    "batch_size",
    "num_workers",
    "crops_per_epoch",
    "patch_size",
    "width",
    "depth",
    "lr",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the DIME network on packed datasets",
        description="Train DIME on random patches of the packed datasets TRAIN (one or more), "
        "validate on VAL, and write checkpoints, CSV logs and the exported model "
        "DIR/model.pt. If DIR/checkpoints/last.ckpt exists the run resumes from it "
        "(unless --fresh) if that run had the same settings. Options below override keys of the "
        "training config.",
    )
    parser.add_argument("--train", type=Path, nargs="+", required=True, metavar="TRAIN.zarr")
    parser.add_argument("--val", type=Path, nargs="+", required=True, metavar="VAL.zarr")
    parser.add_argument("--out-dir", type=Path, required=True, metavar="DIR")
    parser.add_argument("--config", type=Path, metavar="FILE", help="training config YAML")
    parser.add_argument("--fresh", action="store_true", help="ignore DIR/checkpoints/last.ckpt")
    parser.add_argument(
        "--restart-on-change",
        action="store_true",
        help="start over when DIR's checkpoint is of a run with other settings (default: "
        "refuse; the workflow passes it, since Snakemake reruns training when they change)",
    )
    parser.add_argument("--fast-dev-run", action="store_true", help="one batch each, no outputs")
    parser.add_argument("--seed", type=int, help="seed (default 2025)")
    parser.add_argument("--max-epochs", type=int, metavar="N")
    parser.add_argument("--accelerator", help="auto (default), cpu, gpu, cuda, mps or tpu")
    parser.add_argument("--devices", type=int, metavar="N", help="devices (default 1)")
    parser.add_argument(
        "--precision",
        help="32-true (default), 64-true, 16-mixed, bf16-mixed, 16-true, bf16-true, "
        "transformer-engine, transformer-engine-float16 (or 64, 32, 16, bf16)",
    )
    parser.add_argument("--batch-size", type=int, metavar="N")
    parser.add_argument("--num-workers", type=int, metavar="N", help="DataLoader workers")
    parser.add_argument("--crops-per-epoch", type=int, metavar="N")
    parser.add_argument("--patch-size", type=int, metavar="P", help="patch edge, px (32)")
    parser.add_argument("--width", type=int, metavar="W", help="first-level channels (24)")
    parser.add_argument("--depth", type=int, metavar="D", help="U-Net levels (3)")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.set_defaults(handler=run)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The dotted config keys set on the command line."""
    from dime_pipeline.dime.settings import leaf_keys

    where = leaf_keys()
    chosen = {where[name]: getattr(args, name) for name in SHORTCUTS}
    chosen = {key: value for key, value in chosen.items() if value is not None}
    if args.fast_dev_run:
        chosen["trainer.fast_dev_run"] = True
    if args.quiet:
        chosen["trainer.progress_bar"] = False
    return chosen


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.dime.progress import configure_console
    from dime_pipeline.dime.training import TRAINING_OUTPUTS, fit, load_training_config
    from dime_pipeline.errors import UserError
    from dime_pipeline.textio import check_outputs_spare_inputs

    # Progress lines under --quiet too; Lightning's messages once, its banners not under --quiet.
    configure_console(args.quiet)
    for path in [*args.train, *args.val]:
        if not path.is_dir():
            raise UserError(f"{path}: no packed dataset there")
    written = [args.out_dir / name for name in TRAINING_OUTPUTS]
    check_outputs_spare_inputs(written, [*args.train, *args.val, args.config])
    config = load_training_config(args.config, overrides(args))
    result = fit(
        config,
        args.train,
        args.val,
        args.out_dir,
        resume=not args.fresh,
        restart_on_change=args.restart_on_change,
    )
    if result.rank != 0:  # DDP: one summary line, from the rank that exported the model
        return
    shown = ", ".join(
        f"{name} {result.metrics[name]:.4g}"
        for name in ("val/mse", "val/r", "val/mape")
        if name in result.metrics
    )
    print(
        f"trained {result.epochs} epoch(s), {result.global_step} step(s)"
        + (f"; last epoch {shown}" if shown else "")
        + (f"; model {result.model_path}" if result.model_path else "")
    )
