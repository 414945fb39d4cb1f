"""`photon train policy` and `photon export`.

  photon train policy [--world-model RUN|FILE] --data DIR [--data DIR2 ...] --out RUN [--scratch]
                      [--config YAML] [--steps N] [--batch-size N] [--device auto] [--seed N]
  torchrun --nproc_per_node=2 -m photon_policy.cli train policy ...                 # DDP
  photon export [--ckpt RUN|FILE] [--out FILE]          # TorchScript, for policy_node's `export`
"""
from __future__ import annotations

import argparse
from pathlib import Path

from photon_policy.learning import run_args

SHIPPED = "policy.pt"


def resolve_checkpoint(ckpt: Path | None) -> Path:
    """A run directory means its best.pt; nothing means the shipped policy."""
    return run_args.resolve_checkpoint(ckpt, SHIPPED, "policy")


def checked_checkpoint(ckpt: Path | None) -> Path:
    """resolve_checkpoint, then read and verify the file: a bad checkpoint is refused before any
    node starts (CheckpointError naming the problem)."""
    from photon_policy.policy.checkpoint import load_policy_checkpoint

    path = resolve_checkpoint(ckpt)
    load_policy_checkpoint(path)
    return path


def driving_checkpoint(ckpt: Path | None, overrides: dict[str, dict]) -> Path:
    """The checkpoint a command that drives with the policy uses (photon eval, photon collect): --ckpt,
    or `--set policy.checkpoint=X` (taken out of `overrides`, so nothing replaces it later), else the
    shipped one; checked before any node starts. Both at once: ValueError."""
    given = overrides.get("policy", {}).pop("checkpoint", None)
    if given is not None and ckpt is not None:
        raise ValueError("give the policy's checkpoint once: --ckpt or --set policy.checkpoint")
    return checked_checkpoint(ckpt if given is None else (Path(given) if given else None))


def train_config_from_args(args: argparse.Namespace):
    from photon_policy.policy.train import PolicyTrainConfig
    from world_model_node.cli import resolve_checkpoint as resolve_world_model

    values = run_args.config_values(args, PolicyTrainConfig)
    if args.scratch:
        values["scratch"] = True
    if args.world_model is not None or not values.get("world_model"):
        try:
            values["world_model"] = str(resolve_world_model(args.world_model))
        except FileNotFoundError as exc:
            if not values.get("scratch"):
                raise ValueError(str(exc)) from exc
            values["world_model"] = ""  # from scratch, with the default world-model shape
    return PolicyTrainConfig(**values)


def cmd_train(args: argparse.Namespace) -> int:
    from photon_policy.policy.train import train

    path = train(train_config_from_args(args))
    print(f"[photon] policy checkpoint: {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    ckpt = checked_checkpoint(args.ckpt)
    if args.format == "onnx":
        from photon_policy.policy.onnx_backend import export_onnx as export
        out = args.out or ckpt.with_name(f"{ckpt.stem}.onnx")
    else:
        from photon_policy.policy.export import export_torchscript as export
        out = args.out or ckpt.with_name(f"{ckpt.stem}.torchscript.pt")
    print(f"[photon] exporting {ckpt} as {args.format}", flush=True)
    export(ckpt, out)
    print(f"[photon] {args.format} policy: {out} (run it with policy_node parameter export:={out})")
    return 0


def add_train_commands(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("policy", help="behaviour cloning of the driving policy on recorded bags")
    p.add_argument("--world-model", type=Path,
                   help="world-model run directory or checkpoint to start from (default: the shipped one)")
    run_args.add_run_arguments(p, "PolicyTrainConfig (with `model:` for the head)")
    p.add_argument("--scratch", action="store_true",
                   help="same network, freshly initialised (the world model only sets its shape)")
    p.set_defaults(func=cmd_train)


def add_export_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write the policy's per-frame compute as TorchScript or ONNX")
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript")
    p.add_argument("--ckpt", type=Path, help="policy checkpoint or run directory (default: the shipped policy)")
    p.add_argument("--out", type=Path, help="output file (default: <checkpoint>.torchscript.pt or .onnx beside it)")
    p.set_defaults(func=cmd_export)
