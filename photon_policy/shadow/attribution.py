"""Who was heading off the road: the simulator's own outcome of each shadow event (simulation only).

A lockstep shadow drive is deterministic (photon_policy.sim.replay): the driver's commands
replayed from the seed reproduce it, and from any frame the same state can be driven on
with other commands. For an event we drive both branches from the frame it started at, over
the event and `horizon_s` after it:
  driver  the commands the driver gave (what happened);
  policy  the policy's commands at those frames (open loop: each answers the frame the
          driver's drive showed, since the policy never drove; over a second or two that is
          what it was asking for).
The branch runs from the event's first frame for at most MAX_BRANCH_S of the event, then
`horizon_s` more: the longer an open-loop branch runs, the less its commands fit its state.
Each branch gets its distance from the track's centre line in half road widths at its start
and at its furthest, and the simulator's score change. A branch is heading off the road when
it gets past OFF_ROAD (the whole car beyond the edge of the tarmac) and at least
FURTHER_OUT further out than it started (a car already on the grass that steers back is
not), or ends the episode "off_playfield". `fault`:
"policy" when only the policy's branch leaves the road, "driver" when only the driver's
does, "both", or "neither".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from photon_policy.bags.reader import read_episode
from photon_policy.sim.carracing import DT, CarRacingVehicle
from photon_policy.sim.drive_by_wire import DriveByWire, DriveByWireConfig

HORIZON_S = 0.5
MAX_BRANCH_S = 1.0
OFF_ROAD = 1.25
"""Half road widths from the centre line (6.67 m each) at which base_link has taken the whole car
(about 3 m wide) off the tarmac; the expert cuts corners to ~1.1 on clean drives."""


FURTHER_OUT = 0.25


@dataclass(frozen=True)
class Branch:
    max_offset: float
    """Furthest distance of base_link from the centre line, in half road widths."""
    score_change: float
    ended: str
    """"" or why the episode ended inside the branch ("off_playfield", ...)."""
    start_offset: float = 0.0

    @property
    def off_road(self) -> bool:
        """Heading off the road (see the module docstring)."""
        return (self.max_offset > OFF_ROAD and self.max_offset >= self.start_offset + FURTHER_OUT) \
            or self.ended == "off_playfield"


def centerline_offset(centerline: np.ndarray, x: float, y: float) -> float:
    """Distance (m) from (x, y) to the closed polyline `centerline`."""
    a, b = centerline, np.roll(centerline, -1, axis=0)
    ab = b - a
    t = np.clip(((x - a[:, 0]) * ab[:, 0] + (y - a[:, 1]) * ab[:, 1]) / np.maximum((ab ** 2).sum(1), 1e-9), 0, 1)
    d = a + ab * t[:, None] - (x, y)
    return float(np.sqrt((d ** 2).sum(1)).min())


def drive_branch(seed: int, commands: np.ndarray, start: int, stop: int, dbw: DriveByWireConfig) -> Branch:
    """Replay commands[:start] from the seed (no frames drawn), then drive commands[start:stop]."""
    vehicle, wire = CarRacingVehicle(), DriveByWire(dbw)
    try:
        vehicle.reset(seed)
        vehicle.set_rendering(False)
        centerline, half = vehicle.track_centerline(), vehicle.track_width / 2.0
        score, offsets = 0.0, []
        start_offset = centerline_offset(centerline, vehicle.state().x, vehicle.state().y) / half if start == 0 else 0.0
        for k in range(stop):
            steering, speed = commands[k]
            result = vehicle.step(wire.command_to_action(float(steering), float(speed), vehicle.state().speed, DT))
            if k == start - 1:
                score = result.score
                start_offset = centerline_offset(centerline, vehicle.state().x, vehicle.state().y) / half
            if k >= start:
                s = vehicle.state()
                offsets.append(centerline_offset(centerline, s.x, s.y) / half)
            if result.terminated or result.truncated:
                if k < start:
                    raise ValueError(f"seed {seed}: the replay ended ({result.reason}) before frame {start}")
                return Branch(max(offsets, default=0.0), result.score - score, result.reason, start_offset)
        return Branch(max(offsets, default=0.0), result.score - score, "", start_offset)
    finally:
        vehicle.close()


def fault(driver: Branch, policy: Branch) -> str:
    return {(False, True): "policy", (True, False): "driver", (True, True): "both"}.get(
        (driver.off_road, policy.off_road), "neither")


def attribute(bag: Path, events: list[dict[str, Any]], horizon_s: float = HORIZON_S,
              dbw: DriveByWireConfig | None = None) -> list[dict[str, Any]]:
    """The index lines of one episode's events, each with both branches' outcome and the fault."""
    ep = read_episode(bag, drive_topic="/policy/drive")  # commands: the policy's; teleop: the driver's
    arrays, dbw = ep.arrays, dbw or DriveByWireConfig()
    if arrays.seed is None:
        raise ValueError(f"{bag}: no /sim/episode status, so no seed to replay")
    out = []
    for line in events:
        start = int(np.searchsorted(arrays.stamps, line["start"] - 1e-6))
        end = min(line["end"], line["start"] + MAX_BRANCH_S) + horizon_s
        stop = min(int(np.searchsorted(arrays.stamps, end + 1e-6)), len(arrays) - 1)
        if not 0 <= start < stop:
            out.append({**line, "fault": "unknown", "fault_note": "event outside the recorded frames"})
            continue
        policy_commands = np.array(arrays.teleop, dtype=np.float64)
        policy_commands[start:stop] = arrays.commands[start:stop]
        driver = drive_branch(arrays.seed, arrays.teleop, start, stop, dbw)
        policy = drive_branch(arrays.seed, policy_commands, start, stop, dbw)
        out.append({**line, "fault": fault(driver, policy), "horizon_s": horizon_s,
                    "start_offset": driver.start_offset,
                    "driver_max_offset": driver.max_offset, "policy_max_offset": policy.max_offset,
                    "driver_score_change": driver.score_change, "policy_score_change": policy.score_change,
                    "driver_ended": driver.ended, "policy_ended": policy.ended})
    return out
