"""Loop overhead: steps/s of the full ROS loop (lockstep) vs the raw Gymnasium loop, same expert.

Both run in this one invocation, on the same seeds, with the configs the nodes
are launched with. Prints JSON. Target: ros.steps_per_second >= 0.6 x raw.

    .venv/bin/python benchmarks/loop_overhead.py --seeds 0-9
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

from photon_policy.evaluation import evaluate
from photon_policy.seeds import parse_seeds
from photon_policy.expert.in_process import run_episode, shipped_configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-9")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)

    expert_config, dbw_config = shipped_configs()
    start = time.perf_counter()
    raw = [run_episode(seed, expert_config, dbw_config) for seed in seeds]
    raw_wall = time.perf_counter() - start
    raw_steps = sum(r.steps for r in raw)

    ros = evaluate("expert", seeds, progress=False)
    ros_steps = sum(e.steps for e in ros.episodes)

    print(json.dumps({
        "benchmark": "loop_overhead",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seeds": args.seeds,
        "raw_gymnasium": {"steps": raw_steps, "wall_s": round(raw_wall, 2),
                          "steps_per_second": round(raw_steps / raw_wall, 1),
                          "mean_score": round(sum(r.score for r in raw) / len(raw), 2)},
        "ros_loop_lockstep": {"steps": ros_steps, "wall_s": round(ros.wall_time_s, 2),
                              "steps_per_second": round(ros.steps_per_second, 1),
                              "mean_score": round(ros.mean, 2)},
        "ratio": round(ros.steps_per_second / (raw_steps / raw_wall), 3),
        "same_scores": [round(r.score, 6) for r in raw] == [round(e.score, 6) for e in ros.episodes],
    }, indent=2))


if __name__ == "__main__":
    main()
