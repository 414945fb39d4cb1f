"""The safety layer between the policy's output and the wire, ROS-free.

Every command the policy node publishes passes `SafetyLayer.filter` (or is `stop`):
  - a non-finite steering or speed (NaN, inf: a broken model) becomes a stop: speed 0,
    steering held at the last published value (a sudden swerve is no safer than a stop);
  - steering is clamped to +-max_steering_angle, speed to [0, max_speed];
  - steering changes at most max_steering_rate rad/s, speed rises at most max_accel and
    falls at most max_decel m/s^2, measured between the commands' stamps. A stamp that
    does not advance allows no change, a gap counts as at most MAX_DT (a stream that resumes
    ramps up again), and before the first command the layer stands at a stop.
So whatever goes in, what comes out is finite, within the limits and within the rates, and
stays so on the wire: AckermannDrive's fields are float32, so outputs are float32 values
(a limit of 0.4 rad is sent as the largest float32 not above it).
Every limit that acts is returned (and counted) by name.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from photon_policy.config_files import describe, require_positive

STEERING_NONFINITE = "steering_nonfinite"
SPEED_NONFINITE = "speed_nonfinite"
STEERING_LIMIT = "steering_limit"
SPEED_LIMIT = "speed_limit"
STEERING_RATE = "steering_rate"
ACCEL = "accel_limit"
DECEL = "decel_limit"
MAX_DT = 0.1
"""s: the most time one command's rate limits may span."""


@dataclass
class SafetyConfig:
    max_steering_angle: float = describe(0.4, "rad: steering commands are clamped to +- this")
    max_speed: float = describe(100.0, "m/s: speed commands are clamped to 0..this")
    max_steering_rate: float = describe(4.0, "rad/s: the fastest the steering command may change")
    max_accel: float = describe(150.0, "m/s^2: the fastest the speed command may rise")
    max_decel: float = describe(300.0, "m/s^2: the fastest the speed command may fall (a stop is immediate)")
    watchdog_s: float = describe(0.2, "s: with no camera frame for this long, publish a stop (autonomous mode)")

    def __post_init__(self) -> None:
        require_positive(self, "max_steering_angle", "max_speed", "max_steering_rate", "max_accel", "max_decel",
                         "watchdog_s")


def _finite(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def _wire(x: float, lo: float, hi: float) -> float:
    """x in [lo, hi] as the nearest float32 that is still in [lo, hi]."""
    f = np.float32(x)
    if float(f) > hi:  # compared as float64: numpy would compare a Python float in float32
        f = np.nextafter(f, np.float32(-np.inf))
    elif float(f) < lo:
        f = np.nextafter(f, np.float32(np.inf))
    return float(f)


class SafetyLayer:
    def __init__(self, config: SafetyConfig | None = None) -> None:
        self.config = config or SafetyConfig()
        self.hits: Counter[str] = Counter()
        """Times each limit acted, by name."""
        self.stops = 0
        """Stops issued: non-finite input, or `stop()` called (watchdog, no context, shutdown)."""
        self.steering = 0.0
        self.speed = 0.0
        self._stamp: float | None = None

    def filter(self, steering: float, speed: float, stamp: float) -> tuple[float, float, list[str]]:
        """The command to publish for a model output at `stamp` (s), and the limits that acted."""
        c = self.config
        s, v = _finite(steering), _finite(speed)
        hits = [name for name, x in ((STEERING_NONFINITE, s), (SPEED_NONFINITE, v)) if x is None]
        if hits:
            self.hits.update(hits)
            return (*self.stop(stamp), hits)
        if abs(s) > c.max_steering_angle:
            hits.append(STEERING_LIMIT)
            s = _clamp(s, -c.max_steering_angle, c.max_steering_angle)
        if not 0.0 <= v <= c.max_speed:
            hits.append(SPEED_LIMIT)
            v = _clamp(v, 0.0, c.max_speed)
        dt = self._advance(stamp)
        step = c.max_steering_rate * dt
        if abs(s - self.steering) > step:
            hits.append(STEERING_RATE)
            s = _clamp(s, self.steering - step, self.steering + step)
        if v > self.speed + c.max_accel * dt:
            hits.append(ACCEL)
            v = self.speed + c.max_accel * dt
        elif v < self.speed - c.max_decel * dt:
            hits.append(DECEL)
            v = self.speed - c.max_decel * dt
        # Rounding at the edges (and to float32) must not step outside the limits.
        self.steering = _wire(_clamp(s, -c.max_steering_angle, c.max_steering_angle), -c.max_steering_angle,
                              c.max_steering_angle)
        self.speed = _wire(_clamp(v, 0.0, c.max_speed), 0.0, c.max_speed)
        self.hits.update(hits)
        return self.steering, self.speed, hits

    def stop(self, stamp: float | None = None) -> tuple[float, float]:
        """A stop: speed 0 at once, steering held. Returns (steering, speed) to publish."""
        if stamp is not None:
            self._advance(stamp)
        self.speed = 0.0
        self.stops += 1
        return self.steering, self.speed

    def _advance(self, stamp: float) -> float:
        """Seconds since the previous command's stamp (0 if unknown, not finite or not advancing;
        at most MAX_DT)."""
        t = _finite(stamp)
        if t is None:
            return 0.0
        dt = 0.0 if self._stamp is None else min(max(t - self._stamp, 0.0), MAX_DT)
        self._stamp = t
        return dt
