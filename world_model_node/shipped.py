"""The world-model checkpoint that ships with the package (made by the command in README.md)."""
from __future__ import annotations

from pathlib import Path

from photon_policy.paths import shipped_model

CHECKPOINT_NAME = "world_model.pt"


def default_checkpoint() -> Path:
    return shipped_model(CHECKPOINT_NAME, "world model")
