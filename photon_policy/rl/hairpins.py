"""Tracks worth screening for RL start points: a sharp hairpin beside another stretch of the same road,
or a sharp S-bend.

Where the shipped policy still loses laps (docs/REWARD_RL.md: 118, 575, 587, 428), it runs wide at
a hairpin taken at speed and crosses the grass, often to a nearby stretch of road, missing the
tiles between. Such tracks are rare (about 1 in 50), so screening tracks in order with
rl/failures.py finds few per hour. This reads each track's shape from the simulator's centre line
(reset only, no driving: ~20 ms a track) and keeps those with both a turn of at least `min_turn`
rad within `windows` tiles and two stretches, at least `min_separation` tiles apart along the road,
within `max_gap` m of each other. The held-out lap every RL arm to session 14 lost (118) has another shape the
policy cuts across: a sharp turn one way straight into a sharp turn the other (`SBendFilter`). The
shape only chooses which tracks to screen and train on; neither the policy nor the reward ever sees it.

    python -m photon_policy.rl.hairpins --seeds 900-5899                   # a seed list for rl/failures.py
    python -m photon_policy.rl.hairpins --shape s-bend --seeds 900-50899
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from photon_policy.seeds import parse_seeds


@dataclass(frozen=True)
class HairpinFilter:
    min_turn: float = 3.0
    """rad: the sharpest heading change within `windows` tiles must reach this (pi: a U-turn)."""
    windows: tuple[int, ...] = (8, 12, 16)
    """Tiles (3.5 m each) over which a turn is measured."""
    max_gap: float = 30.0
    """m: two stretches of road come this close (centre to centre; the road is 13.3 m wide)."""
    min_separation: int = 25
    """Tiles along the road between two points for them to count as different stretches."""

    def shape(self, centerline: np.ndarray) -> tuple[float, float]:
        """centerline (N, 2), a closed loop in driving order -> (sharpest turn in rad, nearest gap in m
        between different stretches)."""
        points = np.asarray(centerline, np.float64)[:, :2]
        n = len(points)
        if n <= 2 * self.min_separation:
            raise ValueError(f"a track of {n} tiles is too short for stretches {self.min_separation} tiles apart")
        bend = bends(points)
        looped = np.concatenate([bend, bend[:max(self.windows)]])
        sums = np.concatenate([[0.0], np.cumsum(looped)])
        turn = max(float(np.abs(sums[w:w + n] - sums[:n]).max()) for w in self.windows)
        index = np.arange(n)
        apart = np.abs(index[:, None] - index[None])
        apart = np.minimum(apart, n - apart) >= self.min_separation
        gap = float(np.linalg.norm(points[:, None] - points[None], axis=-1)[apart].min())
        return turn, gap

    def keeps(self, centerline: np.ndarray) -> bool:
        turn, gap = self.shape(centerline)
        return turn >= self.min_turn and gap <= self.max_gap


@dataclass(frozen=True)
class SBendFilter:
    min_turn: float = 2.4
    """rad: each of the two opposite turns must reach this (118's: 2.62; no other track of 100-199
    reaches 2.2, none of 500-599 2.25)."""
    window: int = 12
    """Tiles (3.5 m each) over which each of the two back-to-back turns is measured."""

    def shape(self, centerline: np.ndarray) -> float:
        """centerline (N, 2), a closed loop in driving order -> the sharpest S-bend in rad: over every
        tile, the smaller of the turns in the `window` tiles before it and after it where the two turn
        opposite ways (0 if no two do)."""
        points = np.asarray(centerline, np.float64)[:, :2]
        n = len(points)
        if n <= 2 * self.window:
            raise ValueError(f"a track of {n} tiles is too short for two turns of {self.window} tiles")
        bend = bends(points)
        sums = np.concatenate([[0.0], np.cumsum(np.concatenate([bend[-self.window:], bend, bend[:self.window]]))])
        at = np.arange(n) + self.window
        before, after = sums[at] - sums[at - self.window], sums[at + self.window] - sums[at]
        opposite = np.sign(before) * np.sign(after) < 0
        return float(np.where(opposite, np.minimum(np.abs(before), np.abs(after)), 0.0).max())

    def keeps(self, centerline: np.ndarray) -> bool:
        return self.shape(centerline) >= self.min_turn


def bends(points: np.ndarray) -> np.ndarray:
    """(N, 2) closed loop -> the heading change at each tile, rad, wrapped to (-pi, pi]."""
    step = np.roll(points, -1, axis=0) - points
    heading = np.arctan2(step[:, 1], step[:, 0])
    return np.angle(np.exp(1j * (np.roll(heading, -1) - heading)))


def main(argv: list[str] | None = None) -> int:
    from photon_policy.sim.carracing import CarRacingVehicle

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", required=True, help="tracks to read, e.g. 900-5899")
    p.add_argument("--shape", choices=("hairpin", "s-bend"), default="hairpin")
    p.add_argument("--min-turn", type=float, help="rad within a window of tiles (default: the shape's)")
    p.add_argument("--max-gap", type=float, default=HairpinFilter.max_gap, help="hairpin: m between two stretches")
    args = p.parse_args(argv)
    options = {} if args.min_turn is None else {"min_turn": args.min_turn}
    hairpin = args.shape == "hairpin"
    keep = HairpinFilter(max_gap=args.max_gap, **options) if hairpin else SBendFilter(**options)
    kind = "a hairpin beside another stretch" if hairpin else "an S-bend"
    vehicle, kept = CarRacingVehicle(), []
    seeds = parse_seeds(args.seeds)
    try:
        for seed in seeds:
            vehicle.reset(seed)
            if keep.keeps(vehicle.track_centerline()):
                kept.append(seed)
    finally:
        vehicle.close()
    print(f"[photon] {len(kept)} of {len(seeds)} tracks have {kind}", flush=True)
    print(",".join(map(str, kept)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
