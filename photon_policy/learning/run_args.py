"""The command-line side every `photon train ...` shares: the run's arguments, a YAML of config
fields, and checkpoint paths as people give them (a file, a run directory, or nothing)."""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

RUN_ARGUMENTS = ("max_steps", "batch_size", "device", "seed", "strict_data")
"""Arguments that override the config file's value when given."""


def add_run_arguments(parser: argparse.ArgumentParser, config_name: str, data: bool = True) -> None:
    """The arguments every trainer takes; `data=False` for one that reads its own inputs (not --data)."""
    if data:
        parser.add_argument("--data", type=Path, action="append", required=True,
                            help="directory of bags; repeat for several (expert drives, DAgger rounds, ...)")
    parser.add_argument("--out", type=Path, required=True, help="run directory: last.pt, best.pt, log.csv")
    parser.add_argument("--config", type=Path, help=f"YAML of {config_name} fields")
    parser.add_argument("--steps", dest="max_steps", type=int, help="optimizer steps of the whole run")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--strict-data", action="store_true", default=None,
                        help="stop at a bag that cannot be read (default: skip and list it)")


def config_values(args: argparse.Namespace, config_cls: type) -> dict[str, Any]:
    """The config file's values (unknown names refused, naming them), then the run's arguments."""
    values = (yaml.safe_load(args.config.read_text()) if args.config else None) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{args.config}: expected a mapping of {config_cls.__name__} fields")
    unknown = set(values) - {f.name for f in fields(config_cls)}
    if unknown:
        raise ValueError(f"{args.config}: unknown training settings {sorted(unknown)}")
    values = dict(values, out_dir=str(args.out))
    if getattr(args, "data", None) is not None:
        values["data_dirs"] = [str(d) for d in args.data]
    values.update({name: getattr(args, name) for name in RUN_ARGUMENTS if getattr(args, name) is not None})
    return values


def resolve_checkpoint(ckpt: Path | None, shipped: str, what: str) -> Path:
    """A run directory means its best.pt; nothing means models/<shipped> of the package."""
    from photon_policy.paths import shipped_model

    if ckpt is None:
        return shipped_model(shipped, what)
    return ckpt / "best.pt" if ckpt.is_dir() else ckpt
