"""CarRacing-v3 behind the drive-by-wire, as a Gymnasium env whose action is an Ackermann command.

The simulator node's loop without ROS: the action [steering rad, speed m/s] goes through the same
DriveByWire as the node (sanitised: non-finite or out-of-range commands never reach the car), one
CarRacing step per action. The observation is what the policy node receives: the camera frame
and the car's IMU [ax, ay, yaw rate] and forward speed after the step; `info` carries the
simulator's score (the judge, and the oracle arm's reward) and the frame's stamp (step x DT).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from photon_policy.sim.carracing import DT, FRAME_SIZE, CarRacingVehicle
from photon_policy.sim.drive_by_wire import DriveByWire, DriveByWireConfig


class DriveByWireCarRacing(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, seeds: list[int], max_steps: int = 1000, dbw_config: DriveByWireConfig | None = None) -> None:
        self.seeds, self.max_steps = list(seeds), max_steps
        self.dbw = DriveByWire(dbw_config)
        c = self.dbw.config
        self.action_space = spaces.Box(np.array([-c.max_steering_angle, 0.0], np.float32),
                                       np.array([c.max_steering_angle, c.max_speed], np.float32))
        self.observation_space = spaces.Dict({
            "frame": spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, 3), np.uint8),
            "imu": spaces.Box(-np.inf, np.inf, (3,), np.float32),
            "speed": spaces.Box(-np.inf, np.inf, (1,), np.float32)})
        self.vehicle = CarRacingVehicle()
        self._episode = 0

    def _obs(self, frame: np.ndarray) -> dict:
        s = self.vehicle.state()
        return {"frame": frame, "imu": np.array([s.ax, s.ay, s.yaw_rate], np.float32),
                "speed": np.array([s.speed], np.float32)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        track = seed if seed is not None else self.seeds[self._episode % len(self.seeds)]
        self._episode += 1
        self.dbw.reset()
        frame = self.vehicle.reset(int(track))
        return self._obs(frame), {"seed": int(track), "stamp": 0.0, "score": 0.0}

    def step(self, action):
        steering, speed = (float(v) for v in np.asarray(action, np.float64).reshape(2))
        result = self.vehicle.step(self.dbw.command_to_action(steering, speed, self.vehicle.state().speed, DT))
        truncated = result.truncated or result.step >= self.max_steps
        return (self._obs(result.frame), float(result.reward), bool(result.terminated), bool(truncated),
                {"stamp": result.step * DT, "score": result.score, "reason": result.reason or
                 ("time_limit" if truncated else "")})

    def close(self) -> None:
        self.vehicle.close()


def make_envs(n: int, seeds: list[int], max_steps: int, dbw_config: DriveByWireConfig | None = None) -> gym.vector.VectorEnv:
    """n envs in this process (Gymnasium's SyncVectorEnv), each cycling through its share of `seeds`.
    In-process, not async: the policy acts in the same process, and two cores leave nothing to
    spread envs over."""
    shares = [seeds[i::n] or seeds for i in range(n)]
    return gym.vector.SyncVectorEnv([lambda s=s: DriveByWireCarRacing(s, max_steps, dbw_config) for s in shares],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
