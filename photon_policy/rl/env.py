"""CarRacing-v3 behind the drive-by-wire, as a Gymnasium env whose action is an Ackermann command.

The simulator node's loop without ROS: the action [steering rad, speed m/s] goes through the same
DriveByWire as the node (sanitised: non-finite or out-of-range commands never reach the car), one
CarRacing step per action. The observation is what the policy node receives: the camera frame
and the car's IMU [ax, ay, yaw rate] and forward speed after the step; `info` carries the
simulator's score (the judge, and the oracle arm's reward) and the frame's stamp (step x DT).

Start points put RL's experience where the starting policy fails: an episode on such a track
begins with the starting policy's own drive of it, replayed without frames (sim/replay.py: the
physics alone, deterministic) to a hand-over frame drawn from a window before its failure, and the
policy drives on from there under the same 1000-step limit. The last `warmup` frames before the
hand-over come with the reset's info, so the policy's runtime and the reward's scorer start with
a whole context, as if they had driven them.

A `Takeover` ends an episode as a safety driver would: once the camera's road check (reward/road.py)
has seen the car mostly off the road for a few frames in a row, the episode is terminated with
reason "takeover" (RL charges it, ppo.py). Without it a lap lost on the grass drives on to the step
limit, and a learned reward that pays for driving pays for that too.
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from photon_policy.reward.road import RoadCheck
from photon_policy.sim.carracing import DT, FRAME_SIZE, CarRacingVehicle
from photon_policy.sim.drive_by_wire import DriveByWire, DriveByWireConfig
from photon_policy.sim.replay import replay_steps


@dataclass(frozen=True)
class StartPoint:
    """A track's episodes start at a frame drawn from [first, last] of the drive `commands` (T, 2):
    [steering, speed] executed after each camera frame from the start line."""
    commands: np.ndarray
    first: int
    last: int


@dataclass(frozen=True)
class Takeover:
    """The car counts as off the road, and the episode ends, after `frames` frames in a row whose road
    share is below `below`. Every lap E and G (docs/REWARD_RL.md) lost on 405, 406, 428, 662 and 118
    had a run of 8 or more such frames starting 8-21 frames before the lap was lost; 20 laps E
    finished had none."""
    frames: int = 5
    below: float = 0.5
    after: int = 30
    """Frames from the start line not judged: CarRacing's start zoom shows less road around the car."""
    road: RoadCheck = RoadCheck()


class DriveByWireCarRacing(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, seeds: list[int], max_steps: int = 1000, dbw_config: DriveByWireConfig | None = None,
                 starts: dict[int, StartPoint] | None = None, warmup: int = 0,
                 takeover: Takeover | None = None) -> None:
        self.seeds, self.max_steps, self.takeover = list(seeds), max_steps, takeover
        self._off_road = 0
        self.starts, self.warmup = starts or {}, warmup
        for track, start in self.starts.items():
            if not warmup <= start.first <= start.last <= len(start.commands):
                raise ValueError(f"track {track}: hand-over window [{start.first}, {start.last}] must lie within "
                                 f"[{warmup} (the warm-up frames), {len(start.commands)} (the drive's frames)]")
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
        self._off_road = 0
        obs = self._obs(self.vehicle.reset(int(track)))
        info = {"seed": int(track), "stamp": 0.0, "score": 0.0}
        start = self.starts.get(int(track))
        if start is not None:
            obs, info = self._hand_over(start, int(self.np_random.integers(start.first, start.last + 1)), obs, info)
        return obs, info

    def _hand_over(self, start: StartPoint, at: int, obs: dict, info: dict) -> tuple[dict, dict]:
        """The start point's drive replayed to frame `at`: its observation, and the info with the
        hand-over frame and the last `warmup` frames' observations and commands."""
        first_warm = at - self.warmup
        seen = [obs] if first_warm == 0 else []
        result = None
        for k, result in enumerate(replay_steps(self.vehicle, self.dbw, start.commands, at, first_warm, info["seed"])):
            obs = self._obs(result.frame)
            if first_warm <= k + 1 < at:
                seen.append(obs)
        warm = {"frames": np.stack([o["frame"] for o in seen]), "imu": np.stack([o["imu"] for o in seen]),
                "speed": np.stack([o["speed"] for o in seen]),
                "commands": np.asarray(start.commands[first_warm:at], np.float32)} if self.warmup else {}
        info |= {"stamp": at * DT, "score": result.score if result else 0.0, "start_frame": at, "warmup": warm}
        return obs, info

    def step(self, action):
        steering, speed = (float(v) for v in np.asarray(action, np.float64).reshape(2))
        result = self.vehicle.step(self.dbw.command_to_action(steering, speed, self.vehicle.state().speed, DT))
        truncated = result.truncated or result.step >= self.max_steps
        reason = result.reason or ("time_limit" if truncated else "")
        terminated = bool(result.terminated)
        if self.takeover is not None and result.step >= self.takeover.after:
            off = self.takeover.road(result.frame) < self.takeover.below
            self._off_road = self._off_road + 1 if off else 0
            if self._off_road >= self.takeover.frames and not (terminated or truncated):
                terminated, reason = True, "takeover"
        return (self._obs(result.frame), float(result.reward), terminated, bool(truncated),
                {"stamp": result.step * DT, "score": result.score, "reason": reason})

    def close(self) -> None:
        self.vehicle.close()


def make_envs(n: int, seeds: list[int], max_steps: int, dbw_config: DriveByWireConfig | None = None,
              starts: dict[int, StartPoint] | None = None, warmup: int = 0,
              takeover: Takeover | None = None) -> gym.vector.VectorEnv:
    """n envs in this process (Gymnasium's SyncVectorEnv), each cycling through its share of `seeds`
    (episodes on `starts`' tracks begin at their start points; with `takeover`, an episode off the
    road ends). In-process, not async: the policy acts in the same process, and two cores leave
    nothing to spread envs over."""
    shares = [seeds[i::n] or seeds for i in range(n)]
    return gym.vector.SyncVectorEnv([lambda s=s: DriveByWireCarRacing(s, max_steps, dbw_config, starts, warmup,
                                                                      takeover) for s in shares],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
