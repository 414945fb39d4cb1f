"""Privileged expert driver: pure pursuit on the track centreline, curvature-aware speed.

It reads only what the simulator publishes about the world: the centreline
(N, 2) in driving order, the road width, and the vehicle's REP-103 state. It
outputs an Ackermann command (steering angle rad + = left, speed m/s) that
a drive-by-wire layer executes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from photon_policy.config_files import require_non_negative, require_positive

if TYPE_CHECKING:  # the expert only reads x, y, yaw and speed; it needs no simulator
    from photon_policy.sim.carracing import VehicleState


@dataclass
class ExpertConfig:
    wheelbase: float = 3.24
    """Axle to axle, m (car_dynamics WHEELPOS y = +80 and -82 units at SIZE 0.02)."""
    rear_axle_offset: float = 1.64
    """From base_link (the hull origin) back to the rear axle, m; pure pursuit steers about it."""
    lookahead_min: float = 5.0
    """Pure-pursuit look-ahead at standstill, m."""
    lookahead_time: float = 0.25
    """Look-ahead grows by this many seconds of travel: long enough to be smooth at speed,
    short enough that corner cutting (~ lookahead_time^2 * lateral accel / 2) stays on the road."""
    max_speed: float = 90.0
    """Speed ceiling on straights, m/s (the car tops out at 100)."""
    max_lateral_accel: float = 150.0
    """Cornering speed limit v = sqrt(a / curvature), m/s^2: the tyres hold ~200 in steady
    cornering, the rest is margin for transients, corner exits under power and noise."""
    max_accel: float = 60.0
    """Acceleration assumed when the profile ramps up out of a corner, m/s^2."""
    max_braking_decel: float = 90.0
    """Deceleration the profile plans for before a corner, m/s^2 (tyres give ~120)."""
    curvature_window: float = 18.0
    """Arc length over which the centreline's curvature is measured, m: smooths its 3.5 m steps."""
    speed_preview_time: float = 0.12
    """Speed is commanded for where the car will be this far ahead, s: covers pedal lag."""
    steering_time_constant: float = 0.05
    """First-order smoothing of the steering command, s (0 = none)."""
    max_steering_angle: float = 0.4
    """Steering command limit, rad (the front-wheel joint limit)."""
    steering_noise_std: float = 0.0
    """Stationary std of the (smoothed Ornstein-Uhlenbeck) steering noise, rad; 0 = off."""
    noise_correlation_time: float = 0.5
    """Correlation time of the steering noise, s: long enough to drift, then recover."""
    noise_seed: int = 0
    """Seed of the steering noise."""
    steering_pulse_interval: float = 0.0
    """Mean time between full-lock steering pulses, s (part of the noise: needs steering_noise_std
    > 0); 0 = none. A pulse shows what full lock does in its first instants from a stable state,
    which drift noise never does: it saturates only once the car is already sliding."""
    steering_pulse_duration: float = 0.15
    """Length of one full-lock pulse (left or right at random), s."""
    search_window: int = 10
    """Centreline points searched either side of the last nearest point."""
    dt: float = 1.0 / 50.0
    """Control period, s (one simulator step)."""

    def __post_init__(self) -> None:
        require_positive(self, "wheelbase", "lookahead_min", "max_speed", "max_lateral_accel", "max_accel",
                         "max_braking_decel", "curvature_window", "max_steering_angle", "noise_correlation_time",
                         "dt")
        require_non_negative(self, "rear_axle_offset", "lookahead_time", "speed_preview_time",  # inf noise: NaN
                             "steering_time_constant", "steering_noise_std", "steering_pulse_interval",
                             "steering_pulse_duration")
        if self.search_window < 1:
            raise ValueError(f"search_window={self.search_window} must be >= 1")
        if self.steering_pulse_interval > 0.0 and self.steering_noise_std <= 0.0:
            raise ValueError("steering_pulse_interval > 0 needs steering_noise_std > 0: pulses are noise, "
                             "executed but never in the clean label")


def path_curvature(centerline: np.ndarray, window: float) -> np.ndarray:
    """Signed curvature (1/m, + = left) at each point of a closed path, from the circle
    through the points about window/2 behind and ahead of it."""
    step = float(np.mean(np.linalg.norm(np.diff(centerline, axis=0), axis=1)))
    k = max(1, round(0.5 * window / step))
    a = np.roll(centerline, k, axis=0) - centerline
    b = np.roll(centerline, -k, axis=0) - centerline
    c = np.roll(centerline, -k, axis=0) - np.roll(centerline, k, axis=0)
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    lengths = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) * np.linalg.norm(c, axis=1)
    # Menger curvature 4*area/(|a||b||c|); a runs backwards, hence the sign.
    return -2.0 * cross / np.maximum(lengths, 1e-9)


def speed_profile(centerline: np.ndarray, curvature: np.ndarray,
                  config: ExpertConfig) -> np.ndarray:
    """Fastest speed at each point of a closed path within the tyres' friction ellipse:
    lateral acceleration v^2*curvature up to max_lateral_accel, and what grip is left
    over for braking and accelerating (the classic forward-backward pass, run twice
    round the loop so the limits carry across the start)."""
    ds = np.linalg.norm(np.roll(centerline, -1, axis=0) - centerline, axis=1)
    kappa = np.maximum(np.abs(curvature), 1e-9)
    v = np.minimum(config.max_speed, np.sqrt(config.max_lateral_accel / kappa))
    n = len(v)

    def reachable(v_from: float, j: int, accel: float) -> float:
        lateral = min(v_from * v_from * kappa[j] / config.max_lateral_accel, 1.0)
        return math.sqrt(v_from * v_from + 2.0 * accel * math.sqrt(1.0 - lateral * lateral) * ds[j])

    for i in range(2 * n - 1, -1, -1):  # braking into point i + 1
        j = i % n
        v[j] = min(v[j], reachable(v[(j + 1) % n], j, config.max_braking_decel))
    for i in range(2 * n):  # accelerating out of point i - 1
        j = i % n
        v[j] = min(v[j], reachable(v[j - 1], j - 1, config.max_accel))
    return v


class ExpertDriver:
    """Pure pursuit + speed profile, with optional correlated steering noise."""

    last_clean_steering: float
    """Steering angle of the last act() before noise: the label to learn from in noisy drives."""

    def __init__(self, config: ExpertConfig | None, centerline: np.ndarray,
                 track_width: float) -> None:
        self.config = config or ExpertConfig()
        self.reset(centerline, track_width)

    def reset(self, centerline: np.ndarray | None = None, track_width: float | None = None,
              noise_seed: int | None = None) -> None:
        """Start a new drive, on a new track if one is given; the noise restarts from
        `noise_seed` (default: the config's)."""
        cfg = self.config
        if centerline is not None:
            self._points = np.asarray(centerline, dtype=np.float64)
            seg = np.linalg.norm(np.roll(self._points, -1, axis=0) - self._points, axis=1)
            self._station = np.concatenate(([0.0], np.cumsum(seg[:-1])))
            self._length = float(np.sum(seg))
            self._curvature = path_curvature(self._points, cfg.curvature_window)
            self._speed = speed_profile(self._points, self._curvature, cfg)
        if track_width is not None:
            self._track_width = float(track_width)
        self._index = None
        self._steering = 0.0
        self._ou = 0.0
        self._noise = 0.0
        self._rng = np.random.default_rng(cfg.noise_seed if noise_seed is None else noise_seed)
        self._pulse_steps_left = 0
        self._pulse_sign = 0.0
        self.last_clean_steering = 0.0

    @property
    def speed_profile(self) -> np.ndarray:
        return self._speed

    @property
    def curvature(self) -> np.ndarray:
        return self._curvature

    def nearest_index(self, x: float, y: float) -> int:
        """Index of the centreline point nearest (x, y): a window around the last one,
        or the whole track on the first call and whenever the window has lost the car."""
        p = np.array([x, y])
        if self._index is not None:
            n = len(self._points)
            idx = np.arange(self._index - self.config.search_window,
                            self._index + self.config.search_window + 1) % n
            d2 = np.sum((self._points[idx] - p) ** 2, axis=1)
            best = int(np.argmin(d2))
            if d2[best] <= self._track_width ** 2:
                self._index = int(idx[best])
                return self._index
        self._index = int(np.argmin(np.sum((self._points - p) ** 2, axis=1)))
        return self._index

    def act(self, state: VehicleState) -> tuple[float, float]:
        """Ackermann command (steering angle rad, + = left; speed m/s) for this state."""
        cfg = self.config
        speed = max(state.speed, 0.0)
        station = self._station_of(state.x, state.y)
        goal = self._point_at(station + cfg.lookahead_min + cfg.lookahead_time * speed)
        c, s = math.cos(state.yaw), math.sin(state.yaw)
        rear = np.array([state.x - cfg.rear_axle_offset * c, state.y - cfg.rear_axle_offset * s])
        dx, dy = goal - rear
        # Goal in the rear-axle frame; pure pursuit's arc through it has curvature 2*y/d^2.
        lateral = -s * dx + c * dy
        target = math.atan(2.0 * cfg.wheelbase * lateral / max(dx * dx + dy * dy, 1e-6))
        alpha = cfg.dt / (cfg.steering_time_constant + cfg.dt)
        self._steering += alpha * (target - self._steering)
        self._steering = _clamp(self._steering, cfg.max_steering_angle)
        self.last_clean_steering = self._steering
        steering = _clamp(self._steering + self._next_noise(), cfg.max_steering_angle)
        if self._next_pulse():
            steering = self._pulse_sign * cfg.max_steering_angle
        speed_cmd = float(np.interp(station + cfg.speed_preview_time * speed, self._station,
                                    self._speed, period=self._length))
        return steering, speed_cmd

    def _station_of(self, x: float, y: float) -> float:
        """Arc length along the centreline of (x, y)'s projection onto it."""
        points, n = self._points, len(self._points)
        p = np.array([x, y])
        i = self.nearest_index(x, y)
        # The projection lies on the segment leaving the nearest point, or else the one entering it.
        start = i
        seg = points[(i + 1) % n] - points[i]
        t = float(np.dot(p - points[i], seg) / np.dot(seg, seg))
        if t < 0.0:
            start = (i - 1) % n
            seg = points[i] - points[start]
            t = float(np.dot(p - points[start], seg) / np.dot(seg, seg))
        t = min(max(t, 0.0), 1.0)
        return (self._station[start] + t * float(np.linalg.norm(seg))) % self._length

    def _point_at(self, station: float) -> np.ndarray:
        return np.array([
            np.interp(station, self._station, self._points[:, 0], period=self._length),
            np.interp(station, self._station, self._points[:, 1], period=self._length),
        ])

    def _next_noise(self) -> float:
        """Ornstein-Uhlenbeck noise smoothed by a first-order low-pass of the same time
        constant: it drifts like OU but without OU's step-to-step jitter, which the
        steering would otherwise chatter with. The cascade halves the OU's variance,
        hence its sqrt(2) larger drive."""
        cfg = self.config
        if cfg.steering_noise_std <= 0.0:
            return 0.0
        decay = math.exp(-cfg.dt / cfg.noise_correlation_time)
        kick = math.sqrt(2.0 * (1.0 - decay * decay)) * float(self._rng.standard_normal())
        self._ou = decay * self._ou + cfg.steering_noise_std * kick
        self._noise = decay * self._noise + (1.0 - decay) * self._ou
        return self._noise

    def _next_pulse(self) -> bool:
        """Whether this step is part of a full-lock pulse; pulses start as a Poisson process.
        (ExpertConfig allows pulses only with steering noise on.)"""
        cfg = self.config
        if cfg.steering_pulse_interval <= 0.0:
            return False
        if self._pulse_steps_left == 0 and self._rng.random() < cfg.dt / cfg.steering_pulse_interval:
            self._pulse_steps_left = max(1, round(cfg.steering_pulse_duration / cfg.dt))
            self._pulse_sign = 1.0 if self._rng.random() < 0.5 else -1.0
        if self._pulse_steps_left == 0:
            return False
        self._pulse_steps_left -= 1
        return True


def _clamp(value: float, limit: float) -> float:
    return min(max(value, -limit), limit)
