"""The reward model over a live drive, ROS-free: what RL scores its rollouts with.

At every model step (camera frames k = phase, phase + s, ...; from the first with a whole context)
it builds the state exactly as features.stream_samples builds it from a bag: the world model's
features of frames k-2s, k-s, k with the mean applied commands of the steps before them, and the
extras of frame k-1. Frames between model steps score nothing (the reward model was trained on
model steps); they are only remembered for the applied commands. With `road` (road.py) the reward of
a model step is scaled by the share of the car still on the road in frame k: what the car's camera
sees of leaving the road, which the learned reward alone barely sees.
"""
from __future__ import annotations

import numpy as np
import torch

from photon_policy.reward.features import COMMAND_SCALE, EXTRAS_SCALE, world_model_features
from photon_policy.reward.model import RewardNet
from photon_policy.reward.road import RoadCheck
from world_model_node.interface import context_frames, extras_vector, step_actions
from world_model_node.model import WorldModel


class OnlineReward:
    def __init__(self, reward: RewardNet, wm: WorldModel, stride: int, road: RoadCheck | None = None) -> None:
        self.reward, self.wm, self.stride, self.road = reward.eval(), wm.eval(), stride, road
        self.steps = wm.config.context_steps
        self.reset()

    def reset(self) -> None:
        self.latents: dict[int, torch.Tensor] = {}
        self.commands: list[np.ndarray] = []
        self.extras: list[np.ndarray] = []

    @torch.no_grad()
    def score(self, k: int, frame: np.ndarray, command: np.ndarray) -> float:
        """Frame k (H, W, 3) uint8 and the command that answers it -> r (0 between model steps and
        before the first whole context). Call observe() with frame k's IMU and speed afterwards."""
        r = 0.0
        first = self.steps * self.stride  # the oldest context frame needs the commands of a step before it
        if k % self.stride == 0:
            self.latents[k] = self.wm.encode(torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None, None])[0, 0]
            self.latents.pop(k - self.steps * self.stride, None)
            if k >= first:
                context = context_frames(k, self.steps, self.stride)
                z = torch.stack([self.latents[int(f)] for f in context])[None]
                actions = torch.from_numpy(step_actions(np.asarray(self.commands, np.float32), context, self.stride))[None]
                state = np.concatenate([world_model_features(self.wm, z, actions)[0], self.extras[k - 1] / EXTRAS_SCALE])
                r = float(self.reward(torch.from_numpy(state.astype(np.float32)),
                                      torch.from_numpy(np.asarray(command, np.float32) / COMMAND_SCALE)))
                if self.road is not None:
                    r *= self.road(frame)
        self.commands.append(np.asarray(command, np.float32))
        return r

    def observe(self, imu: np.ndarray, forward_speed: float) -> None:
        """Frame k's IMU [ax, ay, yaw rate] and forward speed (read at frame k+1, as the policy reads them)."""
        self.extras.append(extras_vector(imu, forward_speed, self.commands[-1][0]))
