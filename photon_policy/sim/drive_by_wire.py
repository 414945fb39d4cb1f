"""Drive-by-wire for the simulated car: Ackermann commands in, CarRacing actions out.

A real drive-by-wire car takes a steering angle and a speed; CarRacing takes
[steer, gas, brake]. This layer does the translation the way a vehicle would:
it validates the command, maps the steering angle onto the front-wheel servo,
and closes a PI loop on speed.

Steering, derived from gymnasium's car_dynamics.py and car_racing.py:
`CarRacing.step` calls `car.steer(-action[0])`, which sets the front wheels'
servo target to -action[0] rad; the servo (a Box2D revolute-joint motor, P gain
50/s, capped at 3 rad/s) drives the joint angle toward it, and the joint's
limits hold it within +-0.4 rad. Box2D angles are counter-clockwise positive,
and a counter-clockwise wheel turns the car left, so the REP-103 steering angle
delta (rad, + = left) and the gym steer s are related by

    s = -delta,   |delta| <= 0.4 rad   (1 rad per unit, sign flipped).

Gym steers beyond +-0.4 only push the wheels against the joint limit.

Speed, measured on the car: it has no aerodynamic or rolling drag (it holds its
speed with no pedal); full gas accelerates it at ~44 m/s^2 up to ~85 m/s by
spinning the rear tyres, which leaves them no lateral grip, hence the traction
control; brake b decelerates it at ~310*b m/s^2 until the tyres reach their grip
limit (~120 m/s^2, b ~ 0.4), and b >= 0.9 locks the wheels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from photon_policy.config_files import require_non_negative, require_positive

# CarRacing-v3's continuous action space: steer [-1, 1], gas [0, 1], brake [0, 1].
_ACTION_LOW = np.array([-1.0, 0.0, 0.0], dtype=np.float32)
_ACTION_HIGH = np.array([1.0, 1.0, 1.0], dtype=np.float32)


FLOAT32_TOLERANCE = 1e-6
"""AckermannDrive fields are float32: a limit sent exactly (0.4 rad) arrives as 0.4000000059604645,
which is the limit, not a bad command."""


@dataclass
class DriveByWireConfig:
    max_steering_angle: float = 0.4
    """Front-wheel joint limit in car_dynamics.py (revolute joint limits -0.4..+0.4 rad)."""
    max_speed: float = 100.0
    """Box2D moves a body at most 2 m per step (b2_maxTranslation): 100 m/s at 50 Hz."""
    max_reverse_speed: float = 0.0
    """CarRacing has no reverse gear (gas only spins the rear wheels forward), so none is modelled."""
    speed_kp: float = 5.0
    """Proportional gain: commanded acceleration per unit speed error, m/s^2 per m/s."""
    speed_ki: float = 0.5
    """Integral gain, m/s^2 per (m/s * s); it makes up the drag of cornering tyres."""
    integral_limit: float = 10.0
    """Anti-windup bound on the integral term's contribution, m/s^2."""
    coast_band: float = 1.0
    """Commanded accelerations within +-coast_band m/s^2 use neither pedal (the car coasts drag-free)."""
    full_gas_accel: float = 30.0
    """Acceleration per unit of gas when mapping acceleration to gas, m/s^2."""
    traction_gas_offset: float = 0.2
    """Traction control: on a straight, gas <= offset + per_speed * speed (see below)."""
    traction_gas_per_speed: float = 0.013
    """car_dynamics feeds the rear wheels power / (wheel speed + 5), so the gas they take
    before spinning grows with speed; a spinning tyre has no lateral grip, and the car spins."""
    lateral_grip: float = 210.0
    """Lateral acceleration the tyres hold, m/s^2; cornering uses it up, so the gas ceiling
    shrinks along the friction ellipse as v^2*tan(steering)/wheelbase approaches it."""
    wheelbase: float = 3.24
    """Axle to axle, m (car_dynamics WHEELPOS y = +80 and -82 units at SIZE 0.02)."""
    brake_decel_per_unit: float = 310.0
    """Deceleration per unit of brake below the grip limit, m/s^2: maps deceleration to brake."""
    max_brake: float = 0.5
    """Brake ceiling: ~0.4 already reaches the grip limit and >= 0.9 locks the wheels."""

    def __post_init__(self) -> None:
        require_positive(self, "max_steering_angle", "max_speed", "full_gas_accel", "lateral_grip",
                         "wheelbase", "brake_decel_per_unit", "max_brake")
        require_non_negative(self, "max_reverse_speed", "speed_kp", "speed_ki", "integral_limit", "coast_band",
                             "traction_gas_offset", "traction_gas_per_speed")


@dataclass(frozen=True)
class SanitizedCommand:
    steering_angle: float
    """rad, finite, within +-max_steering_angle."""
    speed: float
    """m/s, finite, within [-max_reverse_speed, max_speed]."""
    problems: tuple[str, ...] = field(default_factory=tuple)
    """What was wrong with the raw command, e.g. "speed_nonfinite"; empty if nothing."""


def sanitize_command(steering_angle: float, speed: float,
                     config: DriveByWireConfig) -> SanitizedCommand:
    """Make a raw Ackermann command safe: non-finite steering -> 0, non-finite speed -> 0
    (a stop), anything out of range -> clamped to the range."""
    problems = []
    steering_angle, speed = float(steering_angle), float(speed)
    if not math.isfinite(steering_angle):
        problems.append("steering_angle_nonfinite")
        steering_angle = 0.0
    elif abs(steering_angle) > config.max_steering_angle:
        if abs(steering_angle) > config.max_steering_angle + FLOAT32_TOLERANCE:
            problems.append("steering_angle_out_of_range")
        steering_angle = math.copysign(config.max_steering_angle, steering_angle)
    if not math.isfinite(speed):
        problems.append("speed_nonfinite")
        speed = 0.0
    elif not -config.max_reverse_speed <= speed <= config.max_speed:
        if not -config.max_reverse_speed - FLOAT32_TOLERANCE <= speed <= config.max_speed + FLOAT32_TOLERANCE:
            problems.append("speed_out_of_range")
        speed = min(max(speed, -config.max_reverse_speed), config.max_speed)
    return SanitizedCommand(steering_angle, speed, tuple(problems))


class DriveByWire:
    """Turns (steering angle, speed) commands into CarRacing [steer, gas, brake] actions."""

    def __init__(self, config: DriveByWireConfig | None = None) -> None:
        self.config = config or DriveByWireConfig()
        self._integral = 0.0

    def reset(self) -> None:
        self._integral = 0.0

    def command_to_action(self, steering_angle: float, speed: float, measured_speed: float,
                          dt: float) -> np.ndarray:
        """One control step: returns float32 [steer, gas, brake] inside the gym action space.

        The command is sanitized first; a non-finite measured speed brakes, since
        the loop cannot be closed without it.
        """
        if not dt > 0.0:
            raise ValueError(f"dt must be positive, got {dt}")
        cfg = self.config
        command = sanitize_command(steering_angle, speed, cfg)
        if not math.isfinite(measured_speed):
            return self.brake_action(command.steering_angle)
        error = command.speed - measured_speed
        accel = cfg.speed_kp * error + cfg.speed_ki * self._integral
        max_gas = self._traction_limit(command.steering_angle, measured_speed)
        gas = min(max(accel - cfg.coast_band, 0.0) / cfg.full_gas_accel, max_gas)
        brake = min(max(-accel - cfg.coast_band, 0.0) / cfg.brake_decel_per_unit, cfg.max_brake)
        # Anti-windup: stop integrating while a pedal is saturated in the error's direction.
        saturated = (gas >= max_gas and error > 0.0) or (brake >= cfg.max_brake and error < 0.0)
        if not saturated and cfg.speed_ki > 0.0:
            bound = cfg.integral_limit / cfg.speed_ki
            self._integral = min(max(self._integral + error * dt, -bound), bound)
        return self._action(command.steering_angle, gas, brake)

    def brake_action(self, steering_angle: float = 0.0) -> np.ndarray:
        """Stop as hard as the tyres allow without locking, holding `steering_angle`."""
        self._integral = 0.0
        steering_angle = sanitize_command(steering_angle, 0.0, self.config).steering_angle
        return self._action(steering_angle, 0.0, self.config.max_brake)

    def _traction_limit(self, steering_angle: float, measured_speed: float) -> float:
        """Most gas the rear tyres take without spinning, at this speed and cornering load."""
        cfg = self.config
        speed = max(measured_speed, 0.0)
        lateral = min(speed * speed * abs(math.tan(steering_angle)) / cfg.wheelbase / cfg.lateral_grip, 1.0)
        straight = cfg.traction_gas_offset + cfg.traction_gas_per_speed * speed
        return min(straight * math.sqrt(1.0 - lateral * lateral), 1.0)

    @staticmethod
    def _action(steering_angle: float, gas: float, brake: float) -> np.ndarray:
        # The clip only matters for configs that exceed the gym action space.
        action = np.array([-steering_angle, gas, brake], dtype=np.float32)
        return np.clip(action, _ACTION_LOW, _ACTION_HIGH)
