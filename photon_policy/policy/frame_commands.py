"""Per camera frame, the command policy_node publishes, ROS-free: the node and the in-process loop
(photon_policy.policy.in_process) run this same code, so both drive the same car the same way.

The model's output passes the safety layer; before the policy has its context the last command
is held for up to watchdog_s (measured between stamps), else a stop. In autonomous mode the
published command is the command applied to the car, and the runtime is told so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photon_policy.policy.runtime import FrameResult, PolicyRuntime
from photon_policy.policy.safety import SPEED_NONFINITE, STEERING_NONFINITE, SafetyLayer


@dataclass(frozen=True)
class LastCommand:
    stamp: float
    steering: float
    speed: float


@dataclass(frozen=True)
class FrameCommand:
    result: FrameResult
    """The runtime's answer; `repeat` and `out_of_order` frames carry no command to publish."""
    steering: float = 0.0
    speed: float = 0.0
    nonfinite: bool = False
    """The model's output was not finite: the command is a stop."""


class FrameCommander:
    def __init__(self, runtime: PolicyRuntime, safety: SafetyLayer, autonomous: bool) -> None:
        self.runtime = runtime
        self.safety = safety
        self.autonomous = autonomous
        self.frames_without_context = 0

    def command(self, frame: np.ndarray, stamp: float, last: LastCommand | None) -> FrameCommand:
        """The command for a model-size frame stamped `stamp` (s); `last`: the last one published."""
        result = self.runtime.push(frame, stamp)
        if result.status not in ("ok", "no_context"):
            return FrameCommand(result)
        nonfinite = False
        if result.command is None:
            steering, speed = self._without_context(stamp, last)
        else:
            steering, speed, hits = self.safety.filter(float(result.command[0]), float(result.command[1]), stamp)
            nonfinite = STEERING_NONFINITE in hits or SPEED_NONFINITE in hits
        if self.autonomous:
            self.runtime.add_applied(stamp, steering, speed)
        return FrameCommand(result, steering, speed, nonfinite)

    def _without_context(self, stamp: float, last: LastCommand | None) -> tuple[float, float]:
        """Before the policy has its context: hold the last command briefly, else stop."""
        self.frames_without_context += 1
        if last is not None and 0.0 <= stamp - last.stamp <= self.safety.config.watchdog_s:
            steering, speed, _ = self.safety.filter(last.steering, last.speed, stamp)
            return steering, speed
        return self.safety.stop(stamp)
