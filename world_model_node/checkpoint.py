"""World-model checkpoints, in the format every Photon model shares (photon_policy.learning.checkpoint):
format tag `photon-world-model`, the WorldModelConfig inside, weights with their content hash."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from photon_policy.learning.checkpoint import (CheckpointError, check_config, check_image_size, read_checkpoint,
                                               with_weights)
from photon_policy.learning.checkpoint import save_checkpoint as _save
from world_model_node.model import WorldModel, WorldModelConfig

FORMAT = "photon-world-model"
VERSION = 1

__all__ = ["CheckpointError", "FORMAT", "load_checkpoint", "load_model", "save_checkpoint"]


def save_checkpoint(path: str | Path, model: WorldModel, optimizer: torch.optim.Optimizer | None = None,
                    **kw: Any) -> Path:
    """Atomic write; keyword arguments as photon_policy.learning.checkpoint.save_checkpoint."""
    return _save(path, model, FORMAT, VERSION, optimizer, **kw)


def load_checkpoint(path: str | Path, expected_config: WorldModelConfig | None = None,
                    image_size: int | None = None, map_location: Any = "cpu") -> dict:
    """Read and validate a checkpoint dict; raises CheckpointError naming the problem."""
    path = Path(path)
    ckpt = read_checkpoint(path, FORMAT, VERSION, "world-model", map_location,
                           {"photon-policy": "it is a driving-policy checkpoint"})
    try:
        config = WorldModelConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: checkpoint model config is not valid here ({e})") from e
    check_image_size(path, config.image_size,
                     image_size if image_size is not None else (expected_config.image_size if expected_config else None))
    if expected_config is not None:
        check_config(path, config.to_dict(), expected_config.to_dict())
    ckpt["model_config_obj"] = config
    return ckpt


def load_model(path: str | Path, expected_config: WorldModelConfig | None = None,
               image_size: int | None = None, map_location: Any = "cpu") -> tuple[WorldModel, dict]:
    """Checkpoint -> (WorldModel in eval mode, the checkpoint dict)."""
    ckpt = load_checkpoint(path, expected_config, image_size, map_location)
    return with_weights(path, WorldModel(ckpt["model_config_obj"]), ckpt, map_location), ckpt
