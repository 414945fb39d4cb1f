"""The raw in-process loop: simulated vehicle + expert + drive-by-wire, no ROS.

It is the baseline the ROS loop is benchmarked against, and the loop the expert
is tuned with. The command line drives with the configs the nodes are launched
with (config/expert.yaml, config/simulator.yaml), or the dataclass defaults:

    python -m photon_policy.expert.in_process --seeds 0-99 --workers 2 [--defaults]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass
from functools import partial
from multiprocessing import Pool
from typing import Callable

import numpy as np

from photon_policy.config_files import config_from_file
from photon_policy.expert.pure_pursuit import ExpertConfig, ExpertDriver
from photon_policy.paths import config_dir
from photon_policy.seeds import parse_seeds
from photon_policy.sim.carracing import DT, CarRacingVehicle
from photon_policy.sim.drive_by_wire import DriveByWire, DriveByWireConfig


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    score: float
    steps: int
    reason: str
    wall_time_s: float


def _drive(seed: int, expert_config: ExpertConfig | None, dbw_config: DriveByWireConfig | None,
           on_step: Callable[[np.ndarray, float, float], None] | None = None):
    """Drive one episode with the expert through drive-by-wire; on_step(frame, steering,
    speed) sees each camera frame with the command applied after it. Returns the last StepResult."""
    vehicle = CarRacingVehicle()
    try:
        frame = vehicle.reset(seed)
        expert = ExpertDriver(expert_config, vehicle.track_centerline(), vehicle.track_width)
        dbw = DriveByWire(dbw_config)
        while True:
            state = vehicle.state()
            steering, speed = expert.act(state)
            if on_step is not None:
                on_step(frame, steering, speed)
            result = vehicle.step(dbw.command_to_action(steering, speed, state.speed, DT))
            frame = result.frame
            if result.terminated or result.truncated:
                return result
    finally:
        vehicle.close()


def run_episode(seed: int, expert_config: ExpertConfig | None = None,
                dbw_config: DriveByWireConfig | None = None) -> EpisodeResult:
    """Drive one CarRacing-v3 episode with the expert, through drive-by-wire."""
    start = time.perf_counter()
    result = _drive(seed, expert_config, dbw_config)
    return EpisodeResult(seed, result.score, result.step, result.reason,
                         time.perf_counter() - start)


def drive_frames(seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera frames (N, H, W, 3) uint8 and the commands applied after them (N, 2) float32
    [steering rad, speed m/s] from expert drives with the shipped configs, seed after seed
    until `steps` frames are gathered: frames for benchmarks without recorded bags."""
    frames, commands = [], []

    def keep(frame: np.ndarray, steering: float, speed: float) -> None:
        if len(frames) < steps:
            frames.append(frame)
            commands.append((steering, speed))

    while len(frames) < steps:
        _drive(seed, *shipped_configs(), on_step=keep)
        seed += 1
    return np.stack(frames), np.asarray(commands, dtype=np.float32)


def shipped_configs() -> tuple[ExpertConfig, DriveByWireConfig]:
    """The expert's and the drive-by-wire's configs as the nodes' parameter files set them."""
    directory = config_dir()
    return (config_from_file(ExpertConfig, directory / "expert.yaml", "expert"),
            config_from_file(DriveByWireConfig, directory / "simulator.yaml", "simulator",
                             prefix="drive_by_wire."))


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
    parser.add_argument("--defaults", action="store_true",
                        help="the config dataclasses' defaults instead of the nodes' parameter files")
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    configs = (None, None) if args.defaults else shipped_configs()
    with Pool(args.workers) as pool:
        results = pool.map(partial(run_episode, expert_config=configs[0], dbw_config=configs[1]),
                           seeds, chunksize=1)
    print(json.dumps({"episodes": [asdict(r) for r in results], "summary": summarize(results)},
                     indent=1))


if __name__ == "__main__":
    main()
