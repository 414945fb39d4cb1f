"""The driving policy: the world model's encoder and dynamics, plus a head that drives.

Inputs at camera frame k, as world_model_node.interface defines them:
  frames    k - 2s, k - s, k (the world model's context_steps = 3 at its 0.1 s step:
            frames k-10, k-5, k of a 50 Hz camera)
  actions   (3, 2) raw [steering rad, speed m/s]: for each of those frames, the mean
            command applied over the model step before it; the first is unused, as in the
            world model
  extras    (5,) raw [ax m/s^2, ay m/s^2, yaw_rate rad/s, forward speed m/s, steering rad]
            (interface.EXTRAS): the car's state just before frame k
Output: (2,) [steering_angle rad in +-max_steering_angle, speed m/s in 0..max_speed],
the AckermannDrive fields of the command that answers frame k.

The world model folds the three latents into its state (`observe_latents`: one fresh
latent per step, the GRU carrying motion across them); `policy_features` of that state
(GRU h + the summary of the newest latent) and the normalised extras feed an MLP.
A node encodes each camera frame once and caches the latents (`frame_step`), so a frame
costs one encoder pass, two dynamics steps and the head.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn as nn

from world_model_node.interface import EXTRAS
from world_model_node.model import WorldModel, WorldModelConfig



@dataclass
class PolicyConfig:
    world_model: dict = field(default_factory=lambda: WorldModelConfig().to_dict())
    """The world model's config (WorldModelConfig.to_dict()): checkpoints describe the whole network."""
    head_width: int = 256
    """Width of the head's hidden layers."""
    head_layers: int = 2
    """Hidden layers of the head MLP."""
    max_steering_angle: float = 0.4
    """rad: steering output = tanh(.) * this (the front-wheel limit)."""
    max_speed: float = 100.0
    """m/s: speed output = sigmoid(.) * this (CarRacing tops out at 100)."""
    accel_scale: float = 100.0
    """m/s^2 that normalise the IMU's linear accelerations to about +-1 (CarRacing corners at ~170)."""
    yaw_rate_scale: float = 4.0
    """rad/s that normalise the yaw rate."""
    speed_scale: float = 100.0
    """m/s that normalise the odometry speed."""
    steering_scale: float = 0.4
    """rad that normalise the applied steering."""
    steering_inputs: bool = False
    """Feed the steering already applied (the extras' steering, the context actions' steering)
    to the policy. Off: with it, cloning learns to copy the previous command (it predicts the
    labels to ~0.006 rad) and in closed loop follows its own mistakes off the road."""

    def __post_init__(self) -> None:
        self.world_model = WorldModelConfig.from_dict(dict(self.world_model)).to_dict()  # validates it
        if self.head_width < 1 or self.head_layers < 1:
            raise ValueError(f"head_width={self.head_width} and head_layers={self.head_layers} must be >= 1")
        for name in ("max_steering_angle", "max_speed", "accel_scale", "yaw_rate_scale", "speed_scale",
                     "steering_scale"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")

    @property
    def wm(self) -> WorldModelConfig:
        return WorldModelConfig.from_dict(self.world_model)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PolicyConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown policy config fields {sorted(unknown)}")
        return cls(**d)


class DrivingPolicy(nn.Module):
    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = c = config
        self.world_model = WorldModel(c.wm)
        # The decoder draws predictions; the policy never reads it (it stays in the checkpoint so
        # the policy's world model can still be looked at), so it takes no gradient.
        self.world_model.decoder.requires_grad_(False)
        layers, width = [], self.world_model.config.policy_feature_dim + len(EXTRAS)
        for _ in range(c.head_layers):
            layers += [nn.Linear(width, c.head_width), nn.SiLU()]
            width = c.head_width
        layers.append(nn.Linear(width, 2))
        self.head = nn.Sequential(*layers)
        self.register_buffer("extras_scale", torch.tensor(
            [c.accel_scale, c.accel_scale, c.yaw_rate_scale, c.speed_scale, c.steering_scale]), persistent=False)
        self.register_buffer("output_scale", torch.tensor([c.max_steering_angle, c.max_speed]), persistent=False)

    @classmethod
    def from_world_model(cls, wm_checkpoint: str | Path, **head: object) -> "DrivingPolicy":
        """The policy whose world model is the checkpoint's (head freshly initialised)."""
        from world_model_node.checkpoint import load_model

        wm, _ = load_model(wm_checkpoint)
        policy = cls(PolicyConfig(world_model=wm.config.to_dict(), **head))
        policy.world_model.load_state_dict(wm.state_dict())
        return policy

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        c = self.world_model.config
        return c.latent_channels, c.latent_size, c.latent_size

    def world_model_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.world_model.parameters() if p.requires_grad]

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    def act(self, latents: torch.Tensor, actions: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
        """latents (B, T, C, S, S), actions (B, T, 2) raw, extras (B, 5) raw -> (B, 2) raw
        [steering rad, speed m/s]."""
        return self.command(self.head_input(latents, actions, extras))

    def head_input(self, latents: torch.Tensor, actions: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
        """`act` up to the head: (B, policy_feature_dim + 5), the world model's policy features and
        the normalised extras. RL fine-tunes only the head, so this part is its frozen trunk."""
        b, t = latents.shape[:2]
        if not self.config.steering_inputs:
            actions = torch.stack([torch.zeros_like(actions[..., 0]), actions[..., 1]], -1)
            extras = torch.cat([extras[:, :4], torch.zeros_like(extras[:, 4:])], -1)
        # The world model keeps the newest frame as the anchor its predictions warp; the policy
        # predicts no frames, so a placeholder stands in for it.
        anchors = latents.new_zeros(b, t, 1)
        state = self.world_model.observe_latents(latents, anchors, actions, None)
        features = self.world_model.policy_features(state)
        return torch.cat([features, extras / self.extras_scale], -1)

    def command(self, head_input: torch.Tensor) -> torch.Tensor:
        """The head: head_input (B, D) -> (B, 2) raw command."""
        out = self.head(head_input)
        return torch.stack([torch.tanh(out[:, 0]), torch.sigmoid(out[:, 1])], -1) * self.output_scale

    def forward(self, frames: torch.Tensor, actions: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
        """frames (B, T, 3, H, W) uint8 or float 0..1 -> (B, 2) raw command."""
        return self.act(self.world_model.encode(frames), actions, extras)

    def frame_step(self, frame: torch.Tensor, past_latents: torch.Tensor, actions: torch.Tensor,
                   extras: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What a node runs per camera frame: frame (B, 3, H, W), the cached latents of the
        T-1 earlier context frames (B, T-1, C, S, S), actions (B, T, 2), extras (B, 5)
        -> (command (B, 2), this frame's latent (B, C, S, S), to cache)."""
        head_input, latent = self.frame_trunk(frame, past_latents, actions, extras)
        return self.command(head_input), latent

    def frame_trunk(self, frame: torch.Tensor, past_latents: torch.Tensor, actions: torch.Tensor,
                    extras: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`frame_step` up to the head: the same inputs -> (head input (B, D), this frame's latent)."""
        z = self.world_model.encode(frame[:, None])
        return self.head_input(torch.cat([past_latents, z], 1), actions, extras), z[:, 0]

    def loss(self, frames: torch.Tensor, actions: torch.Tensor, extras: torch.Tensor, labels: torch.Tensor,
             steering_weight: float = 4.0, speed_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
        return bc_loss(self(frames, actions, extras), labels, self.output_scale, steering_weight, speed_weight)


def bc_loss(pred: torch.Tensor, labels: torch.Tensor, output_scale: torch.Tensor, steering_weight: float,
            speed_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Behaviour cloning: weighted MSE of steering and speed, each normalised by its output
    range; metrics add the mean absolute errors in rad and m/s."""
    mse = (((pred - labels) / output_scale) ** 2).mean(0)
    loss = steering_weight * mse[0] + speed_weight * mse[1]
    mae = (pred - labels).detach().abs().mean(0)
    return loss, {"loss": loss.item(), "steering_mae": mae[0].item(), "speed_mae": mae[1].item()}


class FrameStep(nn.Module):
    """DrivingPolicy.frame_step as a module's forward: what `photon export` traces."""

    def __init__(self, policy: DrivingPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, frame: torch.Tensor, past_latents: torch.Tensor, actions: torch.Tensor,
                extras: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy.frame_step(frame, past_latents, actions, extras)


class FrameTrunk(FrameStep):
    """DrivingPolicy.frame_trunk as a module's forward: what RL traces (its head keeps learning)."""

    def forward(self, frame: torch.Tensor, past_latents: torch.Tensor, actions: torch.Tensor,
                extras: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy.frame_trunk(frame, past_latents, actions, extras)
