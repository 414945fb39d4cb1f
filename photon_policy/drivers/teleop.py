"""The F1TENTH deadman, without ROS: joystick state in, what goes on /teleop out.

  hold LB (deadman_button, 4): drive by hand, speed = axis speed_axis x speed_scale,
                               steering = axis steering_axis x steering_scale (rad)
  hold RB (autonomy_button, 5): publish nothing, so /teleop goes stale in the mux and the
                               lower-priority /drive (the policy) reaches the motors
  neither, both released, a stale or disconnected joystick, an axis the joystick lacks or a
  non-finite value: a zero command, which (teleop has the mux's top priority) stops the car.

LB wins over RB: when a human holds both, the human drives. Commands are clamped to the
vehicle limits, so the mux never has to refuse one of ours.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from photon_policy.config_files import describe, require_positive
from photon_policy.drivers.vehicle import VehicleLimits

MANUAL, AUTONOMOUS, STOP = "manual", "autonomous", "stop"


@dataclass
class TeleopConfig:
    deadman_button: int = describe(4, "button held to drive by hand (LB on F1TENTH pads)")
    autonomy_button: int = describe(5, "button held to let autonomy drive (RB)")
    speed_axis: int = describe(1, "axis for speed (left stick up/down; up = +1)")
    speed_scale: float = describe(1.0, "m/s at full stick")
    steering_axis: int = describe(2, "axis for steering (left = +1)")
    steering_scale: float = describe(0.34, "rad at full stick")
    rate_hz: float = describe(20.0, "commands per second on /teleop while not autonomous")
    joy_timeout: float = describe(0.5, "s without a Joy message before the joystick counts as gone")
    frame_id: str = describe("base_link", "header.frame_id of the commands")

    def __post_init__(self) -> None:
        for name in ("deadman_button", "autonomy_button", "speed_axis", "steering_axis"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
        if self.deadman_button == self.autonomy_button:
            raise ValueError("deadman_button and autonomy_button must differ")
        require_positive(self, "rate_hz", "joy_timeout")
        for name in ("speed_scale", "steering_scale"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite")


@dataclass
class Decision:
    mode: str                       # MANUAL | AUTONOMOUS | STOP
    steering: float = 0.0
    speed: float = 0.0
    reason: str = ""                # why a STOP (empty for the plain "no button held")


@dataclass
class Deadman:
    config: TeleopConfig
    limits: VehicleLimits
    stops: Counter = field(default_factory=Counter)

    def decide(self, axes: Sequence[float] | None, buttons: Sequence[int] | None, joy_age: float | None) -> Decision:
        """`joy_age`: seconds since the last Joy message (None: never had one)."""
        c = self.config
        if axes is None or buttons is None or joy_age is None or joy_age > c.joy_timeout:
            return self._stop("joystick_stale")

        def pressed(i: int) -> bool:
            return i < len(buttons) and bool(buttons[i])

        if pressed(c.deadman_button):
            if max(c.speed_axis, c.steering_axis) >= len(axes):
                return self._stop("axis_missing")
            speed, steering = axes[c.speed_axis] * c.speed_scale, axes[c.steering_axis] * c.steering_scale
            if not (math.isfinite(speed) and math.isfinite(steering)):
                return self._stop("nonfinite_axis")
            lim = self.limits
            return Decision(MANUAL, max(-lim.max_steering_angle, min(lim.max_steering_angle, steering)),
                            max(-lim.max_reverse_speed, min(lim.max_speed, speed)))
        if pressed(c.autonomy_button):
            return Decision(AUTONOMOUS)
        return Decision(STOP)

    def _stop(self, reason: str) -> Decision:
        self.stops[reason] += 1
        return Decision(STOP, reason=reason)
