"""Keyboard teleop without ROS: arrow keys in a terminal -> (steering, speed).

  up / down     speed +- speed_step (held until changed; clamped to the vehicle limits)
  left / right  steering +- steering_step; it springs back to 0 when no steering key came for
                steer_hold_s (terminals repeat a held key ~30 times a second)
  space, s      stop (speed and steering 0)
  q, Ctrl-C     quit (the node publishes a stop first)
Keys arrive as terminal bytes: arrows are the ANSI sequences ESC [ A..D.
"""
from __future__ import annotations

from dataclasses import dataclass

from photon_policy.config_files import describe, require_positive
from photon_policy.drivers.vehicle import VehicleLimits

ARROWS = {b"\x1b[A": "up", b"\x1b[B": "down", b"\x1b[C": "right", b"\x1b[D": "left",
          b"\x1bOA": "up", b"\x1bOB": "down", b"\x1bOC": "right", b"\x1bOD": "left"}
KEYS = {b" ": "stop", b"s": "stop", b"q": "quit", b"\x03": "quit"}


@dataclass
class KeyboardConfig:
    speed_step: float = describe(0.25, "m/s per up/down key")
    steering_step: float = describe(0.1, "rad per left/right key")
    steer_hold_s: float = describe(0.3, "s without a steering key before steering returns to 0")
    rate_hz: float = describe(20.0, "commands per second on teleop")

    def __post_init__(self) -> None:
        require_positive(self, "speed_step", "steering_step", "steer_hold_s", "rate_hz")


def parse_keys(data: bytes) -> list[str]:
    """Terminal bytes -> key names (unknown bytes are skipped)."""
    keys, i = [], 0
    while i < len(data):
        seq = data[i:i + 3]
        if seq in ARROWS:
            keys.append(ARROWS[seq])
            i += 3
            continue
        name = KEYS.get(data[i:i + 1])
        if name:
            keys.append(name)
        i += 1
    return keys


@dataclass
class KeyboardTeleop:
    config: KeyboardConfig
    limits: VehicleLimits
    speed: float = 0.0
    steering: float = 0.0
    quit: bool = False
    _steer_time: float = -1e9

    def key(self, name: str, now: float) -> None:
        c, lim = self.config, self.limits
        if name == "up":
            self.speed = min(self.speed + c.speed_step, lim.max_speed)
        elif name == "down":
            self.speed = max(self.speed - c.speed_step, -lim.max_reverse_speed)
        elif name in ("left", "right"):
            step = c.steering_step if name == "left" else -c.steering_step  # REP-103: left is positive
            self.steering = max(-lim.max_steering_angle, min(lim.max_steering_angle, self.steering + step))
            self._steer_time = now
        elif name == "stop":
            self.speed = self.steering = 0.0
        elif name == "quit":
            self.speed = self.steering = 0.0
            self.quit = True

    def command(self, now: float) -> tuple[float, float]:
        if now - self._steer_time > self.config.steer_hold_s:
            self.steering = 0.0
        return self.steering, self.speed
