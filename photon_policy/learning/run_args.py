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
    parser.add_argument("--config", type=Path, action="append",
                        help=f"YAML of {config_name} fields; repeat to layer files (a later file's values win), "
                             "e.g. a base run and one arm's changes")
    parser.add_argument("--steps", dest="max_steps", type=int, help="optimizer steps of the whole run")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--strict-data", action="store_true", default=None,
                        help="stop at a bag that cannot be read (default: skip and list it)")


def config_values(args: argparse.Namespace, config_cls: type) -> dict[str, Any]:
    """The config files' values, layered in order (unknown names refused, naming the file), then the
    run's arguments."""
    values: dict[str, Any] = {}
    for path in args.config or ():
        layer = yaml.safe_load(path.read_text()) or {}
        if not isinstance(layer, dict):
            raise ValueError(f"{path}: expected a mapping of {config_cls.__name__} fields")
        unknown = set(layer) - {f.name for f in fields(config_cls)}
        if unknown:
            raise ValueError(f"{path}: unknown training settings {sorted(unknown)}")
        values.update(layer)
    values["out_dir"] = str(args.out)
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
