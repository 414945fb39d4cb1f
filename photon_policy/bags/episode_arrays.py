"""One recorded episode as time-aligned arrays: the contract between bags and learning.

Bags (ours or `ros2 bag record` on a car) are read into EpisodeArrays; the
world-model and policy datasets cut their training windows from these arrays.
Index k of every array refers to camera frame k.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EpisodeArrays:
    name: str
    """Where it came from, e.g. the bag directory name; splits are made by this."""
    stamps: np.ndarray
    """(T,) float64: camera frame header stamps, seconds, strictly increasing."""
    frames: np.ndarray
    """(T, H, W, 3) uint8 RGB camera frames."""
    commands: np.ndarray
    """(T, 2) float32 [steering_angle rad, speed m/s]: the command applied after frame k
    (the newest command on the driving topic stamped at or before frame k; zeros before the first)."""
    teleop: np.ndarray
    """(T, 2) float32: the human/expert label in force at frame k (= commands where the teleop driver drove)."""
    imu: np.ndarray
    """(T, 3) float32 [linear_acceleration.x, linear_acceleration.y, angular_velocity.z], newest at or before frame k."""
    odom: np.ndarray
    """(T, 3) float32 [twist.linear.x, twist.linear.y, twist.angular.z], newest at or before frame k."""
    seed: int | None = None
    """Simulator seed, when the bag holds episode status."""
    segments: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """(T,) int64: frames with the same value are contiguous in time; a gap in the camera
    stream (a dropped frame) starts a new segment, and no training window may span two."""

    def __post_init__(self) -> None:
        t = len(self.stamps)
        for name in ("frames", "commands", "teleop", "imu", "odom"):
            if len(getattr(self, name)) != t:
                raise ValueError(f"{self.name}: {name} has {len(getattr(self, name))} rows, stamps has {t}")
        if self.segments.size == 0:
            self.segments = np.zeros(t, dtype=np.int64)
        if t > 1 and not np.all(np.diff(self.stamps) > 0):
            raise ValueError(f"{self.name}: frame stamps are not strictly increasing")

    def __len__(self) -> int:
        return len(self.stamps)
