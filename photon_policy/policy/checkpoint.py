"""Self-describing policy checkpoints, in the format every Photon model shares (photon_policy.learning.checkpoint):
a plain dict with format tag `photon-policy`, the PolicyConfig (world-model config inside) as a
dict, weights, optimizer, step, train config and metrics, read only with weights_only=True.
Anything unexpected raises CheckpointError saying what is wrong.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from photon_policy.learning.checkpoint import (CheckpointError, check_config, check_image_size, read_checkpoint,
                                               save_checkpoint, with_weights)
from photon_policy.policy.model import DrivingPolicy, PolicyConfig
from world_model_node.checkpoint import FORMAT as WORLD_MODEL_FORMAT

FORMAT = "photon-policy"
VERSION = 1

__all__ = ["CheckpointError", "FORMAT", "load_policy", "load_policy_checkpoint", "save_policy"]


def save_policy(path: str | Path, policy: DrivingPolicy, optimizer: torch.optim.Optimizer | None = None,
                **kw: Any) -> Path:
    """Atomic write; keyword arguments as photon_policy.learning.checkpoint.save_checkpoint."""
    return save_checkpoint(path, policy, FORMAT, VERSION, optimizer, **kw)


def load_policy_checkpoint(path: str | Path, expected_config: PolicyConfig | None = None,
                           image_size: int | None = None, map_location: Any = "cpu") -> dict:
    """Read and validate a policy checkpoint dict; CheckpointError naming the problem."""
    path = Path(path)
    ckpt = read_checkpoint(path, FORMAT, VERSION, "policy", map_location, {
        WORLD_MODEL_FORMAT: "it is a world-model checkpoint: train a policy from it with "
                            "`photon train policy --world-model`"})
    try:
        config = PolicyConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: checkpoint model config is not valid here ({e})") from e
    check_image_size(path, config.wm.image_size, image_size)
    if expected_config is not None:
        got, exp = config.to_dict(), expected_config.to_dict()
        check_config(path, got.pop("world_model"), exp.pop("world_model"))
        check_config(path, got, exp)
    ckpt["model_config_obj"] = config
    return ckpt


def load_policy(path: str | Path, expected_config: PolicyConfig | None = None, image_size: int | None = None,
                map_location: Any = "cpu") -> tuple[DrivingPolicy, dict]:
    """Checkpoint -> (DrivingPolicy in eval mode, the checkpoint dict)."""
    ckpt = load_policy_checkpoint(path, expected_config, image_size, map_location)
    return with_weights(path, DrivingPolicy(ckpt["model_config_obj"]), ckpt, map_location), ckpt
