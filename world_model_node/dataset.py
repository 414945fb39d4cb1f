"""Training windows cut from EpisodeArrays.

A window is context_steps + horizon_steps frames, `stride` camera frames apart
(world_model_node.interface.model_stride: 5 at 50 Hz and 0.1 s), and one action per
frame as the interface defines it (interface.step_actions: the mean of the commands
applied over the `stride` camera frames that led up to it). A held command averages
to itself, which is what the node feeds for future steps.

A window never spans two `segments` values (a dropped camera frame breaks the
fixed stride) and starts no earlier than `skip_s` after the episode's first
frame (CarRacing zooms in during its first second). Its first action needs the
`stride` commands before its first frame, so those also lie in the segment.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from photon_policy.bags.episode_arrays import EpisodeArrays
from world_model_node import interface


def camera_dt(episode: EpisodeArrays) -> float:
    """Median seconds between camera frames."""
    if len(episode) < 2:
        raise ValueError(f"{episode.name}: fewer than two frames")
    return float(np.median(np.diff(episode.stamps)))


def model_stride(model_dt: float, episode: EpisodeArrays) -> int:
    """Camera frames per model step."""
    return interface.model_stride(model_dt, camera_dt(episode))


def window_starts(episode: EpisodeArrays, steps: int, stride: int, skip_s: float = 1.0) -> np.ndarray:
    """Indices of the first frame of every valid window of `steps` frames `stride` apart."""
    t = len(episode)
    span = steps * stride  # from the first command (start - stride) to the last frame
    if t <= span:
        return np.zeros(0, dtype=np.int64)
    # Run ids change wherever `segments` changes, so equal ids at both ends = one contiguous run.
    run = np.concatenate([[0], np.cumsum(episode.segments[1:] != episode.segments[:-1])])
    first_cmd = np.arange(stride, t - (steps - 1) * stride) - stride
    last = first_cmd + span
    ok = (run[first_cmd] == run[last]) & (episode.stamps[first_cmd] >= episode.stamps[0] + skip_s - 1e-9)
    return (first_cmd[ok] + stride).astype(np.int64)


def window_actions(commands: np.ndarray, start: int, steps: int, stride: int) -> np.ndarray:
    """(steps, 2) float32: the actions of frames start, start + stride, ... (interface.step_actions)."""
    return interface.step_actions(commands, start + stride * np.arange(steps), stride)


def window_motion(odom: np.ndarray, start: int, steps: int, stride: int, model_dt: float) -> np.ndarray:
    """(steps, 3) float32 [yaw rad, left m, forward m]: for frame start + i*stride, how the car
    moved since the frame a stride before it, from the odometry twist (body frame) over those
    frames."""
    idx = start - stride + 1 + np.arange(steps * stride)
    vx, vy, yaw_rate = odom[idx].reshape(steps, stride, 3).mean(axis=1).T
    return (np.stack([yaw_rate, vy, vx], -1) * model_dt).astype(np.float32)


def split_episodes(episodes: list[EpisodeArrays], val_fraction: float = 0.1
                   ) -> tuple[list[EpisodeArrays], list[EpisodeArrays]]:
    """Deterministic train/val split by episode name (CRC32, the same on every machine and
    run); at least one validation episode when there are two or more."""
    keys = {e.name: zlib.crc32(e.name.encode()) / 2**32 for e in episodes}
    val = [e for e in episodes if keys[e.name] < val_fraction]
    if not val and len(episodes) > 1 and val_fraction > 0:
        val = [min(episodes, key=lambda e: keys[e.name])]
    names = {e.name for e in val}
    return [e for e in episodes if e.name not in names], val


@dataclass(frozen=True)
class WindowIndex:
    episode: int
    start: int


class WindowDataset(Dataset):
    """Windows from many episodes; item = {"frames": (T, 3, H, W) uint8, "actions": (T, 2) float32}
    with T = context_steps + horizon_steps. `every` keeps one window start in `every`
    (evaluation uses it to thin overlapping windows)."""

    def __init__(self, episodes: list[EpisodeArrays], context_steps: int, horizon_steps: int,
                 model_dt: float, skip_s: float = 1.0, every: int = 1) -> None:
        self.episodes = episodes
        self.steps = context_steps + horizon_steps
        self.model_dt = model_dt
        self.strides = [model_stride(model_dt, e) for e in episodes]
        self.index: list[WindowIndex] = []
        for i, e in enumerate(episodes):
            starts = window_starts(e, self.steps, self.strides[i], skip_s)[::every]
            self.index.extend(WindowIndex(i, int(s)) for s in starts)

    def __len__(self) -> int:
        return len(self.index)

    def frame_indices(self, i: int) -> np.ndarray:
        w = self.index[i]
        return w.start + self.strides[w.episode] * np.arange(self.steps)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        w = self.index[i]
        e, stride = self.episodes[w.episode], self.strides[w.episode]
        frames = e.frames[self.frame_indices(i)]  # (T, H, W, 3)
        return {"frames": torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))),
                "actions": torch.from_numpy(window_actions(e.commands, w.start, self.steps, stride)),
                "motion": torch.from_numpy(window_motion(e.odom, w.start, self.steps, stride, self.model_dt))}
