"""The world model <-> policy interface, defined once. Training (world_model_node.dataset,
photon_policy.policy.dataset), the policy node (photon_policy.policy.runtime) and the world-model
node (world_model_node.predictor) all take their inputs from here.

At camera frame k, with T = context_steps and s = camera frames per model step
(`model_stride`: 5 for a 50 Hz camera and a 0.1 s model step):

  context frames  k - (T-1)s, ..., k - s, k (`context_frames`)
  actions         for each context frame f, the mean of the commands applied over the s camera
                  frames before it, commands[f-s .. f-1] (`step_actions`; streaming:
                  `AppliedCommands.mean_over_step`). Dreamer's convention: action t moved the car
                  from frame t-1 to frame t. The mean, not one instant's command, because the
                  motion between two model steps integrates every command in between.
  extras          [imu ax, imu ay, yaw rate, forward speed, applied steering] (EXTRAS) as known
                  for certain when frame k arrives: the IMU, odometry and command of frame k-1
                  (`extras_vector`; streaming: the newest values stamped strictly before frame k)
  features        WorldModel.policy_features(WorldModel.observe_latents(...)): the vector the
                  policy head reads from the world model

`commands[k]` is the command applied after camera frame k: in a bag, the newest command on the
driving topic stamped at or before frame k; live, the command stamped with frame k's stamp
(the answer to it) or the newest before the next frame.
"""
from __future__ import annotations

from collections import deque

import numpy as np

EXTRAS = ("imu_ax", "imu_ay", "imu_yaw_rate", "speed", "steering")
"""The extras vector, in order."""
RESTART_S = 1.0
"""A frame stamped this much before the previous one starts a new stream (a restarted simulator, a
looping bag, a clock set back): live consumers reset their context. A smaller step back is an
out-of-order frame and is dropped."""
STAMP_EPSILON_S = 1e-4
"""Stamps are rounded to nanoseconds: one model step before a frame is compared with this slack."""


def model_stride(model_dt: float, camera_dt: float) -> int:
    """Camera frames per model step."""
    return max(1, round(model_dt / camera_dt))


def context_frames(k: int, steps: int, stride: int) -> np.ndarray:
    """Indices of the context frames of frame k, oldest first."""
    return k - stride * np.arange(steps - 1, -1, -1)


def step_actions(commands: np.ndarray, frames: np.ndarray, stride: int) -> np.ndarray:
    """(len(frames), 2) float32: for each frame f, the mean of commands[f - stride .. f - 1]."""
    idx = np.asarray(frames)[:, None] - stride + np.arange(stride)
    return commands[idx].mean(axis=1).astype(np.float32)


def extras_vector(imu: np.ndarray, forward_speed: float, steering: float) -> np.ndarray:
    """(5,) float32 in EXTRAS order from the IMU [ax, ay, yaw rate], forward speed and applied steering."""
    return np.array([*np.asarray(imu, dtype=np.float32)[:3], forward_speed, steering], dtype=np.float32)


class StampedValues:
    """A stream of stamped values (IMU, odometry, commands) for lookups by time."""

    def __init__(self, maxlen: int = 64) -> None:
        self.items: deque[tuple[float, np.ndarray]] = deque(maxlen=maxlen)

    def add(self, stamp: float, value) -> None:
        self.items.append((stamp, np.asarray(value, dtype=np.float32)))

    def before(self, t: float, not_older_than: float = -np.inf) -> np.ndarray | None:
        """The newest value stamped strictly before t (and not before `not_older_than`)."""
        for stamp, value in reversed(self.items):
            if stamp < t:
                return value if stamp >= not_older_than else None
        return None

    def clear(self) -> None:
        self.items.clear()


class AppliedCommands:
    """Live counterpart of `step_actions`: per camera frame, the command applied since the previous
    frame; the mean of those over the model step before a frame."""

    def __init__(self, model_dt: float) -> None:
        self.dt = model_dt
        self._frames: deque[tuple[float, np.ndarray]] = deque()

    def add(self, stamp: float, applied: np.ndarray) -> None:
        """Camera frame at `stamp` and the command applied since the frame before it."""
        self._frames.append((stamp, np.asarray(applied, dtype=np.float32)))

    def mean_over_step(self, stamp: float) -> np.ndarray | None:
        """Mean command applied over the model step that ends at the frame stamped `stamp`
        (frames in (stamp - model_dt, stamp]); None when no frame lies there."""
        lo = stamp - self.dt + STAMP_EPSILON_S
        within = [applied for t, applied in self._frames if lo < t <= stamp]
        return np.mean(within, axis=0) if within else None

    def forget_before(self, t: float) -> None:
        while self._frames and self._frames[0][0] < t:
            self._frames.popleft()

    def clear(self) -> None:
        self._frames.clear()
