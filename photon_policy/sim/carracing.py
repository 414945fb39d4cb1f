"""Gymnasium CarRacing-v3 seen as a vehicle: camera frames, REP-103 state, and the track.

The ROS simulator node and the benchmarks both drive this wrapper; it adds no
physics of its own, so the same seed and the same actions give the same frames
and score.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.envs.box2d.car_racing import FPS, STATE_W, TRACK_WIDTH

DT = 1.0 / FPS
"""Seconds of simulated time per step."""
MAX_STEPS = 1000
"""Steps after which an episode is truncated (the registered time limit)."""
FRAME_SIZE = STATE_W
"""Camera frames are FRAME_SIZE x FRAME_SIZE x 3, uint8 RGB."""

# The Box2D hull drives along its local +y axis; REP-103 yaw is that of the forward (x) axis.
_HULL_ANGLE_TO_YAW = math.pi / 2


@dataclass(frozen=True)
class VehicleState:
    """Ground truth in REP-103 conventions; the world frame doubles as `odom`."""

    x: float
    """Position of base_link (the hull origin, midway between the axles), m."""
    y: float
    yaw: float
    """Heading of the forward axis from world +x, rad in [-pi, pi]."""
    vx: float
    """Body-frame velocity of base_link, forward, m/s."""
    vy: float
    """Body-frame velocity of base_link, left, m/s."""
    yaw_rate: float
    """rad/s, positive counter-clockwise (left)."""
    ax: float
    """Body-frame linear acceleration over the last step, forward, m/s^2."""
    ay: float
    """Body-frame linear acceleration over the last step, left, m/s^2."""
    speed: float
    """Signed forward speed (= vx), m/s."""
    steering_angle: float
    """Mean front-wheel joint angle, rad, positive = left."""
    tiles_visited: int
    tiles_total: int


@dataclass(frozen=True)
class StepResult:
    frame: np.ndarray
    """FRAME_SIZE x FRAME_SIZE x 3 uint8 camera frame after the step."""
    reward: float
    score: float
    """Sum of rewards since reset: the CarRacing episode score."""
    terminated: bool
    truncated: bool
    reason: str
    """Why the episode ended: "", "lap_complete", "off_playfield" or "time_limit"."""
    step: int
    """Number of actions applied since reset (1 after the first step)."""


class CarRacingVehicle:
    """Headless CarRacing-v3 with a per-step REP-103 state and the privileged track."""

    track_width = 2.0 * TRACK_WIDTH
    """Road width edge to edge, m (CarRacing's TRACK_WIDTH is the half-width)."""

    def __init__(self) -> None:
        # No passive env checker: it would warn about the frame-less steps of set_rendering(False).
        self._env = gym.make("CarRacing-v3", render_mode=None, max_episode_steps=MAX_STEPS,
                             disable_env_checker=True)
        self._car = None
        self._score = 0.0
        self._steps = 0
        self._done = True
        self._velocity = np.zeros(2)
        self._accel = np.zeros(2)

    def reset(self, seed: int) -> np.ndarray:
        """Generate the track for `seed`, place the car on its start; returns the first frame."""
        frame, _ = self._env.reset(seed=seed)
        self._car = self._env.unwrapped.car
        self._score = 0.0
        self._steps = 0
        self._done = False
        self._velocity = self._base_link_velocity()
        self._accel = np.zeros(2)
        return frame

    def set_rendering(self, enabled: bool) -> None:
        """Draw camera frames on step() (the default), or skip them: step() then returns
        frame None, ~100x faster. Drawing has no effect on the physics, so a drive replayed
        without frames reaches exactly the state it reached with them (photon_policy.sim.replay)."""
        env = self._env.unwrapped
        if enabled:
            env.__dict__.pop("_render", None)
        else:
            env._render = lambda mode: None  # shadows CarRacing._render for this instance only

    def step(self, action: np.ndarray) -> StepResult:
        """Apply one gym action [steer, gas, brake] for DT seconds."""
        if self._done:
            raise RuntimeError("episode is over: call reset() first")
        action = np.asarray(action, dtype=np.float32)
        if not self._env.action_space.contains(action):
            raise ValueError(f"action {action} outside {self._env.action_space}")
        frame, reward, terminated, truncated, info = self._env.step(action)
        self._steps += 1
        self._score += float(reward)
        velocity = self._base_link_velocity()
        self._accel = (velocity - self._velocity) / DT
        self._velocity = velocity
        self._done = terminated or truncated
        if terminated:
            reason = "lap_complete" if info.get("lap_finished") else "off_playfield"
        else:
            reason = "time_limit" if truncated else ""
        return StepResult(frame, float(reward), self._score, terminated, truncated, reason,
                          self._steps)

    def state(self) -> VehicleState:
        hull = self._car.hull
        yaw = math.remainder(hull.angle + _HULL_ANGLE_TO_YAW, math.tau)
        c, s = math.cos(yaw), math.sin(yaw)
        vx, vy = _to_body(self._velocity, c, s)
        ax, ay = _to_body(self._accel, c, s)
        front = self._car.wheels[:2]
        unwrapped = self._env.unwrapped
        return VehicleState(
            x=float(hull.position[0]), y=float(hull.position[1]), yaw=yaw,
            vx=vx, vy=vy, yaw_rate=float(hull.angularVelocity), ax=ax, ay=ay, speed=vx,
            # Box2D joint angles are counter-clockwise positive, which turns the wheels left.
            steering_angle=0.5 * (front[0].joint.angle + front[1].joint.angle),
            tiles_visited=int(unwrapped.tile_visited_count), tiles_total=len(unwrapped.track),
        )

    def visited_tiles(self) -> np.ndarray:
        """(N,) bool: the tiles a wheel has touched, in driving order. Tile 0 lies under the car at the
        start, so the lap ends only once every tile is visited: a tile missed costs the rest of the
        1000 steps."""
        return np.array([tile.road_visited for tile in self._env.unwrapped.road], dtype=bool)

    def track_centerline(self) -> np.ndarray:
        """(N, 2) centre points in driving order; tile i spans points i-1 to i."""
        return np.array([(x, y) for _, _, x, y in self._env.unwrapped.track], dtype=np.float64)

    def close(self) -> None:
        self._env.close()

    def _base_link_velocity(self) -> np.ndarray:
        # Box2D's linearVelocity is the centre of mass's; odometry wants the body origin's.
        return np.array(self._car.hull.GetLinearVelocityFromLocalPoint((0.0, 0.0)), dtype=np.float64)


def _to_body(world: np.ndarray, c: float, s: float) -> tuple[float, float]:
    return float(c * world[0] + s * world[1]), float(-s * world[0] + c * world[1])
