"""The simulated vehicle's episode loop, ROS-free: seeds, commands in force, stale-command braking.

The simulator node owns the clock and the messages; this class owns what
happens at each tick, so tests and benchmarks drive the same logic.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from photon_policy.sim.carracing import DT, CarRacingVehicle, StepResult, VehicleState
from photon_policy.sim.drive_by_wire import DriveByWire, DriveByWireConfig, sanitize_command
from photon_policy.sim.timing import EpisodeTiming

EPISODE_GAP_TICKS = 50
"""Sim time between one episode's last frame and the next one's first: 1 s, longer than any
driver's memory of stamps (the policy's 0.2 s context, its hold of a command for watchdog_s), so
each episode starts as the first one did, whatever ran before it. The clock runs on, never back."""


@dataclass(frozen=True)
class CommandInForce:
    steering_angle: float
    speed: float
    received_at: float  # wall-clock seconds
    stamp: float | None = None  # the command's header stamp, s (None: not given)


class SimulationSession:
    def __init__(self, seeds: list[int], repeat: bool, max_steps: int, dbw_config: DriveByWireConfig):
        if not seeds:
            raise ValueError("no seeds to run")
        self.seeds = list(seeds)
        self.repeat = repeat
        self.max_steps = max_steps
        self.dbw_config = dbw_config
        self.vehicle = CarRacingVehicle()
        self.dbw = DriveByWire(dbw_config)
        self.counters: Counter[str] = Counter()
        self.episode = -1          # index of the running episode since start-up
        self.tick = 0              # frames produced since start-up; sets the sim clock
        self.seed = -1
        self.frame: np.ndarray | None = None
        self.last_result: StepResult | None = None
        self.command: CommandInForce | None = None
        self.timing = EpisodeTiming()
        """The running episode's command timeliness (photon_policy.sim.timing)."""

    @property
    def state(self) -> VehicleState:
        return self.vehicle.state()

    @property
    def episode_done(self) -> bool:
        r = self.last_result
        return r is not None and (r.terminated or r.truncated)

    def start_next_episode(self) -> bool:
        """Reset to the next seed; False when the seed list is exhausted and not repeating."""
        nxt = self.episode + 1
        if nxt >= len(self.seeds) and not self.repeat:
            return False
        self.episode = nxt
        self.seed = self.seeds[nxt % len(self.seeds)]
        self.frame = self.vehicle.reset(self.seed)
        self.dbw.reset()
        self.last_result = None
        self.command = None
        self.timing = EpisodeTiming()
        self.tick += 1 if nxt == 0 else EPISODE_GAP_TICKS
        return True

    def accept_command(self, steering_angle: float, speed: float, now: float,
                       stamp: float | None = None) -> tuple[str, ...]:
        """Sanitize and hold a command; returns the problems found (each counted)."""
        cmd = sanitize_command(steering_angle, speed, self.dbw_config)
        self.counters["commands"] += 1
        for problem in cmd.problems:
            self.counters[problem] += 1
        self.command = CommandInForce(cmd.steering_angle, cmd.speed, now, stamp)
        return cmd.problems

    def supersedes(self, stamp: float, now: float, timeout: float | None) -> bool:
        """False (and counted) for a command stamped before the one in force while that one is
        still fresh: a drive-by-wire car acts on the newest command, and one that arrives late
        (delayed, queued behind a busy executor) must not undo a newer one. A stale command in
        force accepts anything, so a commander whose clock jumped back brakes the car for at most
        one timeout instead of locking it out."""
        held = self.command
        if held is None or held.stamp is None or stamp >= held.stamp or self.command_is_stale(now, timeout):
            return True
        self.counters["commands_older_than_in_force"] += 1
        return False

    def command_is_stale(self, now: float, timeout: float | None) -> bool:
        if self.command is None:
            return True
        return timeout is not None and now - self.command.received_at > timeout

    def step(self, now: float, command_timeout: float | None) -> StepResult:
        """Advance one physics step under the command in force, braking if there is none or it is stale."""
        measured_speed = self.vehicle.state().speed
        stale = self.command_is_stale(now, command_timeout)
        self.timing.step(self.tick * DT, None if stale else self.command.stamp, stale)
        if stale:
            self.counters["stale_ticks"] += 1
            action = self.dbw.brake_action()
        else:
            action = self.dbw.command_to_action(self.command.steering_angle, self.command.speed,
                                                measured_speed, DT)
        result = self.vehicle.step(action)
        if not (result.terminated or result.truncated) and result.step >= self.max_steps:
            result = replace(result, truncated=True, reason="time_limit")
        self.frame = result.frame
        self.last_result = result
        self.tick += 1
        self.counters["steps"] += 1
        return result
