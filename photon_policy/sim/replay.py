"""Replay a recorded simulator episode and branch it: what the simulator would have shown.

A bag recorded in lockstep holds, per camera frame, the command the simulator
executed after it; CarRacing is deterministic, so driving the same seed through
the same drive-by-wire with those commands reproduces the episode frame for
frame. From any frame of it, the same state can then be driven on with other
commands (full left, full right) and its frames rendered: the ground truth of
a world model's counterfactual ("what if I had steered left here?").

Replaying skips drawing every frame nobody looks at (`CarRacingVehicle.set_rendering`):
the physics alone runs ~100x faster than with the camera.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from photon_policy.sim.carracing import DT, CarRacingVehicle, StepResult
from photon_policy.sim.drive_by_wire import DriveByWire, DriveByWireConfig


class ReplayMismatch(RuntimeError):
    """The replayed frame differs from the recorded one: the bag is not a lockstep episode of
    this simulator (a real car's, a real-time run's, another version's)."""


def replay_steps(vehicle: CarRacingVehicle, dbw: DriveByWire, commands: np.ndarray, frame: int,
                 draw_from: int, seed: int) -> Iterator[StepResult]:
    """Drive a vehicle just reset on track `seed` with commands[:frame] ([steering, speed], the
    command executed after each camera frame) through `dbw`, drawing only camera frames numbered
    `draw_from` and on; yields each step's result (step k's frame is camera frame k + 1)."""
    for k in range(frame):
        vehicle.set_rendering(k + 1 >= draw_from)
        steering, speed = commands[k]
        result = vehicle.step(dbw.command_to_action(float(steering), float(speed), vehicle.state().speed, DT))
        if result.terminated or result.truncated:
            raise ReplayMismatch(f"seed {seed}: the replay ended ({result.reason}) at frame {k + 1}, "
                                 f"before frame {frame}")
        yield result


class EpisodeReplay:
    """A recorded episode's seed and executed commands, replayable from its first frame."""

    def __init__(self, seed: int, commands: np.ndarray, frames: np.ndarray | None = None,
                 dbw_config: DriveByWireConfig | None = None) -> None:
        """commands (T, 2) [steering, speed]: the command executed after camera frame k;
        frames (T, H, W, 3): the recorded frames, checked against the replay at each branch point."""
        self.seed = int(seed)
        self.commands = np.asarray(commands, dtype=np.float64)
        self.frames = frames
        self.dbw_config = dbw_config or DriveByWireConfig()

    def _drive_to(self, frame: int) -> tuple[CarRacingVehicle, DriveByWire, np.ndarray]:
        """A vehicle driven to camera frame `frame` (before the command that follows it), the
        drive-by-wire in the state it had there, and that frame (which must be the recorded one)."""
        vehicle, dbw = CarRacingVehicle(), DriveByWire(self.dbw_config)
        drawn = vehicle.reset(self.seed)
        try:
            for result in replay_steps(vehicle, dbw, self.commands, frame, draw_from=frame, seed=self.seed):
                drawn = result.frame
        except ReplayMismatch:
            vehicle.close()
            raise
        if self.frames is not None and not np.array_equal(drawn, self.frames[frame]):
            vehicle.close()
            diff = np.abs(drawn.astype(int) - self.frames[frame].astype(int)).mean()
            raise ReplayMismatch(f"seed {self.seed}: replayed frame {frame} differs from the recorded one "
                                 f"(mean abs difference {diff:.2f} of 255)")
        return vehicle, dbw, drawn

    def branch(self, frame: int, commands: list[tuple[float, float]], steps: int, every: int) -> np.ndarray:
        """From camera frame `frame`, hold each command for steps * every camera frames:
        (len(commands), steps, H, W, 3) uint8, the frames every `every` camera frames (an episode
        that ends inside a branch holds its last frame)."""
        if not 0 <= frame < len(self.commands):
            raise ValueError(f"branch frame {frame} outside the episode's {len(self.commands)} frames")
        out = []
        for steering, speed in commands:
            vehicle, dbw, start = self._drive_to(frame)
            kept = []
            try:
                for k in range(1, steps * every + 1):
                    vehicle.set_rendering(k % every == 0)
                    result = vehicle.step(dbw.command_to_action(steering, speed, vehicle.state().speed, DT))
                    if k % every == 0:
                        kept.append(result.frame)
                    if result.terminated or result.truncated:
                        break
            finally:
                vehicle.close()
            while len(kept) < steps:
                kept.append(kept[-1] if kept else start)
            out.append(np.stack(kept))
        return np.stack(out)
