"""The policy over live streams, ROS-free: what policy_node runs per camera frame.

Every camera frame is encoded once; its latent is cached, and the command applied since
the previous frame is kept. For frame k at stamp t the policy reads what
world_model_node.interface defines: the cached latents nearest t - model_dt and
t - 2 model_dt (within a quarter model step), the mean applied command over the model step
before each of those frames, and the extras from the newest IMU, odometry and applied command
stamped strictly before t. Until that context exists (the first 0.2 s of a stream, or after
a gap) the result says so and carries no command.

Missing inputs (nothing on the topic within `input_timeout_s` before the frame):
  IMU       zeros (the policy drives from the camera; the IMU only refines)
  odometry  the speed of the newest applied command (the drive-by-wire tracks it)
Each frame reports which inputs it missed.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from world_model_node.interface import RESTART_S, AppliedCommands, StampedValues, extras_vector


Compute = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class FrameResult:
    status: str
    """ok | no_context (command is None) | repeat (same stamp again) | out_of_order (dropped)."""
    command: np.ndarray | None = None
    """(2,) raw model output [steering rad, speed m/s]; unchecked: the safety layer's job."""
    missing: tuple[str, ...] = ()
    """Inputs that fell back: "imu", "odom"."""
    compute_s: float = 0.0
    """Seconds in the model."""


@dataclass
class _Frame:
    stamp: float
    latent: torch.Tensor  # (1, C, S, S)


@dataclass
class PendingFrame:
    """A frame between PolicyRuntime.prepare and finish."""
    inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
    """The compute's inputs: frame (1, 3, H, W) uint8, past latents, actions, extras."""
    current: _Frame
    ready: bool
    missing: tuple[str, ...]


class PolicyRuntime:
    def __init__(self, compute: Compute, context_steps: int, model_dt: float, latent_shape: tuple[int, int, int],
                 device: torch.device | str = "cpu", input_timeout_s: float = 0.5) -> None:
        self.compute = compute
        self.steps = context_steps
        self.dt = model_dt
        self.tolerance = 0.25 * model_dt
        self.latent_shape = latent_shape
        self.device = torch.device(device)
        self.input_timeout_s = input_timeout_s
        self.restarts = 0
        self.reset()

    def reset(self) -> None:
        self._frames: deque[_Frame] = deque()
        self._applied_per_frame = AppliedCommands(self.dt)
        self.imu, self.odom, self.applied = StampedValues(), StampedValues(), StampedValues()
        self.last_stamp: float | None = None

    def add_imu(self, stamp: float, ax: float, ay: float, yaw_rate: float) -> None:
        self.imu.add(stamp, (ax, ay, yaw_rate))

    def add_odom(self, stamp: float, forward_speed: float) -> None:
        self.odom.add(stamp, (forward_speed,))

    def add_applied(self, stamp: float, steering: float, speed: float) -> None:
        """A command applied to the car (the node's own output when it drives)."""
        if np.isfinite(steering) and np.isfinite(speed):
            self.applied.add(stamp, (steering, speed))

    def push(self, frame: np.ndarray, stamp: float) -> FrameResult:
        """One camera frame (model-size (H, W, 3) uint8 RGB) and its stamp (s)."""
        pending = self.prepare(frame, stamp)
        if isinstance(pending, FrameResult):
            return pending
        started = time.perf_counter()
        command, latent = self.compute(*pending.inputs)
        return self.finish(pending, command, latent, time.perf_counter() - started)

    def prepare(self, frame: np.ndarray, stamp: float) -> "PendingFrame | FrameResult":
        """`push` up to the compute: the frame's inputs, or its result when it is not computed
        (repeat, out_of_order). Give the compute's outputs to `finish`. Split so that a caller
        stepping many runtimes (RL's envs) can run their computes as one batch."""
        if self.last_stamp is not None and stamp <= self.last_stamp:
            if stamp == self.last_stamp:
                return FrameResult("repeat")
            if self.last_stamp - stamp < RESTART_S:
                return FrameResult("out_of_order")
            self.restarts += 1
            self.reset()
        self.last_stamp = stamp
        recent = stamp - self.input_timeout_s
        applied = self.applied.before(stamp)
        applied = applied if applied is not None else np.zeros(2, np.float32)
        missing = []
        imu = self.imu.before(stamp, recent)
        if imu is None:
            missing.append("imu")
            imu = np.zeros(3, np.float32)
        odom = self.odom.before(stamp, recent)
        if odom is None:
            missing.append("odom")
            odom = applied[1:2]
        extras = extras_vector(imu, float(odom[0]), float(applied[0]))

        context = [self._nearest(stamp - i * self.dt) for i in range(self.steps - 1, 0, -1)]
        ready = all(f is not None for f in context)
        current = _Frame(stamp, torch.empty(0))
        self._applied_per_frame.add(stamp, applied)
        if ready:
            past = torch.cat([f.latent[:, None] for f in context], 1)
            actions = np.stack([self._applied_per_frame.mean_over_step(f.stamp) for f in (*context, current)])
        else:
            past = torch.zeros(1, self.steps - 1, *self.latent_shape, device=self.device)
            actions = np.zeros((self.steps, 2), np.float32)
        image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].to(self.device)
        inputs = (image, past, torch.from_numpy(actions)[None].to(self.device),
                  torch.from_numpy(extras)[None].to(self.device))
        return PendingFrame(inputs, current, ready, tuple(missing))

    def finish(self, pending: "PendingFrame", command: torch.Tensor, latent: torch.Tensor,
               compute_s: float) -> FrameResult:
        """The compute's outputs for a prepared frame ((1, 2), (1, C, S, S)) -> its result; caches
        the latent for the frames after it."""
        command = command[0].detach().float().cpu().numpy()
        current, stamp = pending.current, pending.current.stamp
        current.latent = latent
        self._frames.append(current)
        while self._frames and self._frames[0].stamp < stamp - self.steps * self.dt:
            self._frames.popleft()
        self._applied_per_frame.forget_before(stamp - self.steps * self.dt)
        return FrameResult("ok" if pending.ready else "no_context", command if pending.ready else None,
                           pending.missing, compute_s)

    def _nearest(self, t: float) -> _Frame | None:
        best = min(self._frames, key=lambda f: abs(f.stamp - t), default=None)
        return best if best is not None and abs(best.stamp - t) <= self.tolerance else None


def warm_up(compute: Compute, steps: int, dt: float, latent_shape: tuple[int, int, int], size: int,
            device: torch.device | str = "cpu") -> bool:
    """A few runs before the first frame: TorchScript optimises on its first calls (a loop that
    drives without them computes its first frames differently). False when the outputs on a blank
    frame are not finite."""
    ok = True
    for _ in range(3):
        probe = PolicyRuntime(compute, steps, dt, latent_shape, device)
        for i in range(steps * 5 + 1):
            result = probe.push(np.zeros((size, size, 3), np.uint8), i * dt / 5)
        ok = ok and result.command is not None and bool(np.all(np.isfinite(result.command)))
    return ok


def runtime_for(compute: Compute, device: torch.device | str = "cpu", input_timeout_s: float = 0.5) -> PolicyRuntime:
    """A runtime with the context the compute's world model was trained with."""
    wm = compute.config.wm
    return PolicyRuntime(compute, wm.context_steps, wm.model_dt, (wm.latent_channels, wm.latent_size, wm.latent_size),
                         device, input_timeout_s)
