"""The raw in-process loop: simulated vehicle + expert + drive-by-wire, no ROS.

It is the baseline the ROS loop is benchmarked against, and the loop the expert
is tuned with:

    python -m photon_policy.sim.episode --seeds 0-99 --workers 2
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass
from multiprocessing import Pool

from photon_policy.expert.pure_pursuit import ExpertConfig, ExpertDriver
from photon_policy.sim.carracing import DT, CarRacingVehicle
from photon_policy.sim.drive_by_wire import DriveByWire, DriveByWireConfig


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    score: float
    steps: int
    reason: str
    wall_time_s: float


def run_episode(seed: int, expert_config: ExpertConfig | None = None,
                dbw_config: DriveByWireConfig | None = None) -> EpisodeResult:
    """Drive one CarRacing-v3 episode with the expert, through drive-by-wire."""
    start = time.perf_counter()
    vehicle = CarRacingVehicle()
    try:
        vehicle.reset(seed)
        expert = ExpertDriver(expert_config, vehicle.track_centerline(), vehicle.track_width)
        dbw = DriveByWire(dbw_config)
        while True:
            state = vehicle.state()
            steering, speed = expert.act(state)
            result = vehicle.step(dbw.command_to_action(steering, speed, state.speed, DT))
            if result.terminated or result.truncated:
                break
    finally:
        vehicle.close()
    return EpisodeResult(seed, result.score, result.step, result.reason,
                         time.perf_counter() - start)


def parse_seeds(text: str) -> list[int]:
    """"0-99" or "3,7,10-12" -> seeds (ranges inclusive)."""
    seeds = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    return seeds


def summarize(results: list[EpisodeResult]) -> dict:
    scores = [r.score for r in results]
    steps = sum(r.steps for r in results)
    wall = sum(r.wall_time_s for r in results)
    return {
        "episodes": len(results),
        "mean": statistics.fmean(scores),
        "std": statistics.pstdev(scores),
        "min": min(scores),
        "mean_steps": steps / len(results),
        "laps_completed": sum(r.reason == "lap_complete" for r in results),
        "steps_per_s_per_worker": steps / wall,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-99", help='e.g. "0-99" or "3,7,10-12"')
    parser.add_argument("--workers", type=int, default=2, help="parallel processes")
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    with Pool(args.workers) as pool:
        results = pool.map(run_episode, seeds, chunksize=1)
    print(json.dumps({"episodes": [asdict(r) for r in results], "summary": summarize(results)},
                     indent=1))


if __name__ == "__main__":
    main()
