"""The reward network r(state, command) and its checkpoint.

state: the frozen world model's features and the normalised extras (features.py); command:
[steering, speed] normalised by the policy's output range. An MLP maps both to one number.
What the number means depends on the design that trained it (designs.py); every design's
reward is "higher is better driving". With `speed_gate` (rlif only) the reward is the car's forward
speed (its odometry, normalised: progress along the road when on it) times the learned probability
that no intervention is needed: RLIF's intervention signal gates a progress term, so that driving
fast where the driver would take over scores low, and standing still scores nothing.

A reward checkpoint names the world model whose features it reads by content hash
(`extra.world_model_sha256`): loading it with another world model is refused naming both.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from photon_policy.learning.checkpoint import (CheckpointError, read_checkpoint, save_checkpoint, with_weights)
from photon_policy.reward.features import SPEED_COLUMN

FORMAT, VERSION = "photon-reward", 1
DESIGNS = ("rlif", "pvp", "preference")


@dataclass
class RewardConfig:
    state_dim: int = 261
    """World-model features + extras (features.py)."""
    design: str = "rlif"
    """Which published design trained it (designs.py): rlif, pvp or preference."""
    width: int = 256
    layers: int = 2
    speed_gate: bool = False
    """r = normalised forward speed x P(no intervention) (rlif only; see the module docstring)."""

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"design={self.design!r}: one of {', '.join(DESIGNS)}")
        if self.speed_gate and self.design != "rlif":
            raise ValueError("speed_gate gates the speed by RLIF's intervention probability: design rlif only")
        if self.state_dim < 1 or self.width < 1 or self.layers < 1:
            raise ValueError("state_dim, width and layers must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RewardConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown reward config fields {sorted(unknown)}")
        return cls(**d)


class RewardNet(nn.Module):
    def __init__(self, config: RewardConfig) -> None:
        super().__init__()
        self.config = config
        layers, width = [], config.state_dim + 2
        for _ in range(config.layers):
            layers += [nn.Linear(width, config.width), nn.SiLU()]
            width = config.width
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, state: torch.Tensor, command: torch.Tensor, raw: bool = False) -> torch.Tensor:
        """state (..., D), command (..., 2) normalised -> (...) reward; `raw`: the network's output,
        what the designs train (without `speed_gate` the same)."""
        out = self.mlp(torch.cat([state, command], -1))[..., 0]
        if raw or not self.config.speed_gate:
            return out
        return state[..., SPEED_COLUMN] * torch.sigmoid(out)


def save_reward(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                **fields_: Any) -> Path:
    return save_checkpoint(path, model, FORMAT, VERSION, optimizer, **fields_)


def load_reward_checkpoint(path: str | Path, world_model_sha256: str | None = None,
                           map_location: Any = "cpu") -> dict:
    """A verified reward checkpoint dict (with `model_config_obj`); CheckpointError if it is not one,
    or if `world_model_sha256` is given and the checkpoint was trained on another world model."""
    ckpt = read_checkpoint(path, FORMAT, VERSION, "reward-model", map_location,
                           {"photon-policy": "it is a driving-policy checkpoint",
                            "photon-world-model": "it is a world-model checkpoint"})
    try:
        ckpt["model_config_obj"] = RewardConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: checkpoint model config is not valid here ({e})") from e
    trained_on = ckpt["extra"].get("world_model_sha256")
    if not trained_on:
        raise CheckpointError(f"{path}: reward checkpoint does not name the world model it was trained on")
    if world_model_sha256 is not None and trained_on != world_model_sha256:
        raise CheckpointError(f"{path}: reward model trained on world model {trained_on}, but the world model "
                              f"given has content hash {world_model_sha256}: its features mean something else")
    return ckpt


def load_reward(path: str | Path, world_model_sha256: str | None = None,
                map_location: Any = "cpu") -> tuple[RewardNet, dict]:
    ckpt = load_reward_checkpoint(path, world_model_sha256, map_location)
    return with_weights(path, RewardNet(ckpt["model_config_obj"]), ckpt, map_location), ckpt
