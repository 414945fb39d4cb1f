"""Behaviour-cloning samples cut from EpisodeArrays: what the policy sees at frame k, and the label.

A sample is camera frame k at any phase (not only every model step), with the context
frames, actions and extras that world_model_node.interface defines (the extras from frame
k-1's IMU, odometry and command: what a node has for certain when frame k arrives, since
the simulator publishes frame k's odometry after its image), and
  label    teleop[k]: the driver's command for frame k [steering rad, speed m/s]

The window rules are the world model's (dataset.window_starts): every frame from the
first command before the oldest frame to frame k lies in one segment, and nothing
earlier than `skip_s` after the episode's first frame (CarRacing's zoom-in) is used.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from photon_policy.bags.episode_arrays import EpisodeArrays
from world_model_node.dataset import model_stride, split_episodes, window_starts
from world_model_node.interface import context_frames, extras_vector, step_actions

__all__ = ["PolicySamples", "extras_at", "split_episodes"]


def extras_at(episode: EpisodeArrays, k: int) -> np.ndarray:
    """(5,) float32 extras for frame k (see module docstring), from frame k-1's aligned arrays."""
    j = k - 1
    return extras_vector(episode.imu[j], episode.odom[j, 0], episode.commands[j, 0])


class PolicySamples(Dataset):
    """Item: frames (T, 3, H, W) uint8, actions (T, 2), extras (5,), label (2,) float32.
    `every` keeps one sample in `every` (validation thins overlapping samples)."""

    def __init__(self, episodes: list[EpisodeArrays], context_steps: int, model_dt: float,
                 skip_s: float = 1.0, every: int = 1) -> None:
        self.episodes = episodes
        self.steps = context_steps
        self.strides = [model_stride(model_dt, e) for e in episodes]
        index = []
        for i, (e, stride) in enumerate(zip(episodes, self.strides)):
            starts = window_starts(e, context_steps, stride, skip_s)[::every]
            index.append(np.stack([np.full(len(starts), i), starts], 1))
        self.index = np.concatenate(index) if index else np.zeros((0, 2), np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def frame_index(self, i: int) -> int:
        """Camera frame k of sample i (its newest frame; the label's)."""
        ep, start = self.index[i]
        return int(start + (self.steps - 1) * self.strides[ep])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ep, start = (int(v) for v in self.index[i])
        e, stride = self.episodes[ep], self.strides[ep]
        k = self.frame_index(i)
        context = context_frames(k, self.steps, stride)
        frames = e.frames[context]  # (T, H, W, 3)
        return {"frames": torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))),
                "actions": torch.from_numpy(step_actions(e.commands, context, stride)),
                "extras": torch.from_numpy(extras_at(e, k)),
                "label": torch.from_numpy(np.ascontiguousarray(e.teleop[k], dtype=np.float32))}
