"""`photon train policy` and `photon export`.

  photon train policy [--world-model RUN|FILE] --data DIR [--data DIR2 ...] --out RUN [--scratch]
                      [--config YAML] [--steps N] [--batch-size N] [--device auto] [--seed N]
  torchrun --nproc_per_node=2 -m photon_policy.cli train policy ...                 # DDP
  photon export [--ckpt RUN|FILE] [--out FILE]          # TorchScript, for policy_node's `export`
"""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import yaml

SHIPPED = "policy.pt"


def resolve_checkpoint(ckpt: Path | None) -> Path:
    """A run directory means its best.pt; nothing means the shipped policy."""
    from photon_policy.paths import shipped_model

    if ckpt is None:
        return shipped_model(SHIPPED, "policy")
    return ckpt / "best.pt" if ckpt.is_dir() else ckpt


def train_config_from_args(args: argparse.Namespace):
    from photon_policy.policy.train import PolicyTrainConfig
    from world_model_node.cli import resolve_checkpoint as resolve_world_model

    values = yaml.safe_load(args.config.read_text()) if args.config else {}
    unknown = set(values or {}) - {f.name for f in fields(PolicyTrainConfig)}
    if unknown:
        raise ValueError(f"{args.config}: unknown training settings {sorted(unknown)}")
    values = dict(values or {})
    values["data_dirs"] = [str(d) for d in args.data]
    values["out_dir"] = str(args.out)
    if args.scratch:
        values["scratch"] = True
    if args.world_model is not None or not values.get("world_model"):
        try:
            values["world_model"] = str(resolve_world_model(args.world_model))
        except FileNotFoundError as exc:
            if not values.get("scratch"):
                raise ValueError(str(exc)) from exc
            values["world_model"] = ""  # from scratch, with the default world-model shape
    for name in ("max_steps", "batch_size", "device", "seed"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return PolicyTrainConfig(**values)


def cmd_train(args: argparse.Namespace) -> int:
    from photon_policy.policy.train import train

    path = train(train_config_from_args(args))
    print(f"[photon] policy checkpoint: {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from photon_policy.policy.export import export_torchscript

    ckpt = resolve_checkpoint(args.ckpt)
    out = args.out or ckpt.with_name(f"{ckpt.stem}.torchscript.pt")
    export_torchscript(ckpt, out)
    print(f"[photon] TorchScript policy: {out} (run it with policy_node parameter export:={out})")
    return 0


def add_train_commands(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("policy", help="behaviour cloning of the driving policy on recorded bags")
    p.add_argument("--world-model", type=Path,
                   help="world-model run directory or checkpoint to start from (default: the shipped one)")
    p.add_argument("--data", type=Path, action="append", required=True,
                   help="directory of bags; repeat for several (expert drives, DAgger rounds)")
    p.add_argument("--out", type=Path, required=True, help="run directory: checkpoints, log.csv")
    p.add_argument("--scratch", action="store_true",
                   help="same network, freshly initialised (the world model only sets its shape)")
    p.add_argument("--config", type=Path, help="YAML of PolicyTrainConfig fields, with `model:` for the head")
    p.add_argument("--steps", dest="max_steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_train)


def add_export_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write the policy as TorchScript (ONNX: the onnx package is not installed)")
    p.add_argument("--ckpt", type=Path, help="policy checkpoint or run directory (default: the shipped policy)")
    p.add_argument("--out", type=Path, help="output file (default: <checkpoint>.torchscript.pt beside it)")
    p.set_defaults(func=cmd_export)
