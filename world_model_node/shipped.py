"""The world-model checkpoint that ships with the package (made by the command in README.md)."""
from __future__ import annotations

from pathlib import Path

from photon_policy.paths import share_dir

CHECKPOINT_NAME = "world_model.pt"


def default_checkpoint() -> Path:
    path = share_dir() / "models" / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no shipped world model at {path}: train one (see README) or pass a checkpoint")
    return path
