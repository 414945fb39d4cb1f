"""Evaluation speed: the policy driving through the ROS loop (lockstep) vs the same policy driving in
process, on the same seeds, in one run; the backends' per-frame compute side by side; image ->
/drive through DDS with the node's backend; and the same seeds at the simulator's 50 Hz wall clock
(`photon eval --realtime`), with the lockstep vs real-time score gap; and `photon eval --workers N`
(`workers`: the same seeds with 1, 2, ... simulator/policy pairs side by side).

    .venv/bin/python benchmarks/eval_speed.py --seeds 100-102 [--sections speed,backends,latency,realtime,workers]

Prints JSON. Targets (issue 13): ros.steps_per_second >= 0.6 x in_process; image -> /drive p99 <= 5 ms
with ONNX Runtime; real-time gap < 2 % on an idle machine. The machine's load (`uptime`) is
recorded before and after each section: on the shared 2-core machine it moves every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from photon_policy.evaluation import evaluate
from photon_policy.policy.in_process import drive, shipped_configs
from photon_policy.seeds import parse_seeds
from policy_latency import BACKENDS, in_process, through_dds

SECTIONS = ("speed", "backends", "latency", "realtime", "workers")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def scores(episodes) -> list[float]:
    return [round(e.score, 6) for e in episodes]


def speed(seeds: list[int], max_steps: int) -> dict:
    """Steps/s of the policy in process and through ROS (lockstep), and whether their scores agree."""
    local = drive(seeds, max_steps)
    ros = evaluate("policy", seeds, max_steps=max_steps, progress=False)
    per_episode = ros.wall_time_s / len(ros.episodes)
    return {
        "in_process": {"steps": local.steps, "wall_s": round(local.wall_time_s, 2),
                       "steps_per_second": round(local.steps_per_second, 1), "scores": scores(local.episodes),
                       "model_ms_mean": round(1e3 * statistics.fmean(local.compute_s), 2)},
        "ros_lockstep": {"steps": sum(e.steps for e in ros.episodes), "wall_s": round(ros.wall_time_s, 2),
                         "steps_per_second": round(ros.steps_per_second, 1), "scores": scores(ros.episodes)},
        "ratio": round(ros.steps_per_second / local.steps_per_second, 3),
        "same_scores": scores(local.episodes) == scores(ros.episodes),
        "extrapolated_100_seeds_min": round(100 * per_episode / 60.0, 1),
    }


def realtime(seeds: list[int], max_steps: int, lockstep_scores: list[float] | None) -> dict:
    """The same seeds with the simulator at its wall clock; the gap to lockstep, per seed."""
    if lockstep_scores is None:
        lockstep_scores = scores(evaluate("policy", seeds, max_steps=max_steps, progress=False).episodes)
    rt = evaluate("policy", seeds, max_steps=max_steps, progress=False, realtime=True)
    rt_scores = scores(rt.episodes)
    lock_mean, rt_mean = statistics.fmean(lockstep_scores), statistics.fmean(rt_scores)
    return {"lockstep_scores": lockstep_scores, "realtime_scores": rt_scores,
            "lockstep_mean": round(lock_mean, 2), "realtime_mean": round(rt_mean, 2),
            "gap_percent": round(100.0 * (lock_mean - rt_mean) / abs(lock_mean), 2),
            "timing": rt.timing(),
            "per_episode": [{k: v for k, v in (e.timing or {}).items() if k != "command_age_ms"}
                            for e in rt.episodes]}


def workers(seeds: list[int], max_steps: int, counts: list[int]) -> dict:
    """The same seeds through ROS with each number of pairs side by side, one run after the other:
    wall time (the whole call, start-up included), steps/s while driving, and the scores against
    the first count's run (a policy carries context across a pair's episodes: only a pair's first
    seed is driven as in one pair, so `same_scores` is expected false for the policy)."""
    runs = {}
    for n in counts:
        before, started = uptime(), time.perf_counter()
        report = evaluate("policy", seeds, max_steps=max_steps, progress=False, workers=n)
        wall = time.perf_counter() - started
        startup = wall - report.wall_time_s
        runs[str(n)] = {"wall_s": round(wall, 1), "driving_wall_s": round(report.wall_time_s, 1),
                        "steps": sum(e.steps for e in report.episodes),
                        "steps_per_second": round(report.steps_per_second, 1), "scores": scores(report.episodes),
                        "mean": round(report.mean, 2),
                        "per_worker": [{"seeds": w.seeds, "steps": w.steps, "wall_s": round(w.wall_time_s, 1),
                                        "steps_per_second": round(w.steps_per_second, 1)} for w in report.worker_runs],
                        "extrapolated_100_seeds_min": round((startup + 100 * report.wall_time_s / len(seeds)) / 60, 1),
                        "uptime_before": before, "uptime_after": uptime()}
    reference = runs[str(counts[0])]["scores"]
    for run in runs.values():
        run["same_scores"] = run["scores"] == reference
        run["seeds_scored_the_same"] = sum(a == b for a, b in zip(run["scores"], reference))
    first = runs[str(counts[0])]["wall_s"]
    return {"runs": runs, "speedup": {n: round(first / run["wall_s"], 2) for n, run in runs.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="100-102")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=1000, help="timed frames per backend and through DDS")
    parser.add_argument("--sections", default=",".join(SECTIONS[:-1]),
                        help=f"any of {', '.join(SECTIONS)} (default: all but workers)")
    parser.add_argument("--workers", default="1,2", help="workers section: pair counts to run, e.g. 1,2,4")
    args = parser.parse_args()
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    seeds = parse_seeds(args.seeds)
    params, _, _ = shipped_configs()
    report: dict = {"benchmark": "eval_speed", "cpus": os.cpu_count(), "seeds": args.seeds,
                    "max_steps": args.max_steps, "node_export": params.export, "node_threads": params.threads}
    frames = ckpt = None
    if {"backends", "latency"} & set(sections):
        from photon_policy.expert.in_process import drive_frames
        from photon_policy.policy.cli import resolve_checkpoint
        ckpt = resolve_checkpoint(None)
        frames, _ = drive_frames(seed=1234, steps=250)
    for section in sections:
        before, started = uptime(), time.perf_counter()
        if section == "speed":
            result = speed(seeds, args.max_steps)
        elif section == "backends":
            result = {"per_frame": in_process(ckpt, frames, args.frames, params.threads, BACKENDS)}
        elif section == "workers":
            result = workers(seeds, args.max_steps, [int(n) for n in args.workers.split(",")])
        elif section == "latency":
            log = Path(tempfile.mkdtemp(prefix="photon-eval-speed-")) / "policy_node.log"
            result = {"export": "onnx", **through_dds(ckpt, "onnx", frames, args.frames, 50.0, log)}
        else:
            lockstep = report.get("speed", {}).get("ros_lockstep", {}).get("scores")
            result = realtime(seeds, args.max_steps, lockstep)
        report[section] = {**result, "wall_s": round(time.perf_counter() - started, 1),
                           "uptime_before": before, "uptime_after": uptime()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
