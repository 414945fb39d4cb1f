"""The car's limits, shared by every node that touches commands (config/vehicle.yaml, key `/**`).

One place for the numbers: the mux refuses commands outside them, the teleop scales into
them, the policy's safety layer clamps to them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from photon_policy.config_files import describe, require_non_negative


@dataclass
class VehicleLimits:
    max_steering_angle: float = describe(0.34, "rad: the servo's reach either way (REP-103: positive = left)")
    max_speed: float = describe(2.0, "m/s forward")
    max_reverse_speed: float = describe(1.0, "m/s backward (a positive number)")

    def __post_init__(self) -> None:
        require_non_negative(self, "max_steering_angle", "max_speed", "max_reverse_speed")

    def violation(self, steering: float, speed: float) -> str | None:
        """Why (steering, speed) may not reach the motors, or None when it may.

        AckermannDrive's fields are float32: a command at the limit (0.34) arrives as the nearest
        float32 (0.3400000036), so the limits are compared at float32 precision."""
        if not (math.isfinite(steering) and math.isfinite(speed)):
            return "nonfinite"
        if abs(steering) > _f32_ceiling(self.max_steering_angle):
            return "steering_limit"
        if not -_f32_ceiling(self.max_reverse_speed) <= speed <= _f32_ceiling(self.max_speed):
            return "speed_limit"
        return None


def _f32_ceiling(limit: float) -> float:
    """The limit plus float32 rounding of a value at it (relative 2**-24)."""
    return limit * (1.0 + 2.0 ** -23)


@dataclass
class CameraMount:
    """Where the camera sits on the car (REP-105: base_link -> camera_link -> camera_optical_frame).
    config/vehicle.yaml, parameters `camera_mount.*`."""

    parent_frame: str = describe("base_link", "frame the camera is mounted on")
    frame: str = describe("camera_link", "the camera body frame (x forward, z up)")
    optical_frame: str = describe("camera_optical_frame", "image frame (z forward, x right, y down)")
    x: float = describe(0.25, "m forward of parent_frame")
    y: float = describe(0.0, "m left")
    z: float = describe(0.10, "m up")
    roll: float = describe(0.0, "rad")
    pitch: float = describe(0.0, "rad, positive = looking down")
    yaw: float = describe(0.0, "rad, positive = looking left")

    def __post_init__(self) -> None:
        for name in ("x", "y", "z", "roll", "pitch", "yaw"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"camera_mount.{name} must be finite")
        if not (self.parent_frame and self.frame and self.optical_frame):
            raise ValueError("camera_mount frame names must not be empty")

    def quaternion(self) -> tuple[float, float, float, float]:
        """(x, y, z, w) of the mount's roll-pitch-yaw (static x-y-z, as tf2's setRPY)."""
        return quaternion_from_rpy(self.roll, self.pitch, self.yaw)


OPTICAL_ROTATION = (-0.5, 0.5, -0.5, 0.5)
"""camera_link -> camera_optical_frame: (x, y, z, w) of roll -pi/2, yaw -pi/2 (REP-103 optical frames)."""


def quaternion_from_rpy(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy)
