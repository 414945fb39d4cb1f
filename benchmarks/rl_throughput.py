"""In-process rollout throughput: environment steps per second at 1, 2 and 4 Gymnasium envs with the
policy acting as `photon train rl` steps them (the node's PolicyRuntime, one per env; the frozen
trunk traced and run once for all envs, the head eager), beside the raw environment (a fixed
command, no policy) and the actor before this change (every env's runtime running the policy's
eager frame_step alone, batch 1), taking turns in one process. Optionally with the learned reward
scoring every step too (--reward RUN). Prints JSON. Target (issue 12): policy >= 60 % of raw at 2 envs.

    .venv/bin/python benchmarks/rl_throughput.py [--policy RUN|FILE] [--reward RUN] [--steps 200] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from photon_policy.policy.checkpoint import load_policy
from photon_policy.policy.cli import resolve_checkpoint
from photon_policy.policy.export import EagerCompute
from photon_policy.rl.actor import BatchActor, FrozenTrunk, apply
from photon_policy.rl.env import make_envs
from photon_policy.sim.carracing import DT

SEEDS = list(range(2080, 2100))


class EagerPerEnv(BatchActor):
    """The baseline: each env's runtime pushes its frame through the policy's eager frame_step alone."""

    def __init__(self, trunk: FrozenTrunk, n: int) -> None:
        super().__init__(trunk, n)
        for rt in self.runtimes:
            rt.compute = EagerCompute(self.policy)

    def act(self, frames: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, None, None]:
        commands = np.zeros((len(frames), 2), np.float32)
        for i, rt in enumerate(self.runtimes):
            result = rt.push(frames[i], float(stamps[i]))
            if result.command is not None:
                commands[i] = result.command
        return commands, None, None


def rate(n: int, steps: int, policy=None, make_scorer=None,
         actor_type: type[BatchActor] = BatchActor) -> tuple[float, float]:
    """(env steps per second of wall time, per second of this process's CPU time) over `steps` steps
    per env, after 20 steps of warm-up."""
    envs = make_envs(n, SEEDS, 10_000)
    actor = actor_type(FrozenTrunk(policy), n) if policy is not None else None
    scorers = [make_scorer() for _ in range(n)] if make_scorer else []
    obs, _ = envs.reset(seed=0)
    k, fixed = np.zeros(n, int), np.tile(np.array([0.0, 40.0], np.float32), (n, 1))
    start = None
    for t in range(steps + 20):
        if t == 20:
            start, cpu_start = time.perf_counter(), time.process_time()
        command = fixed
        if actor is not None:
            command, _, _ = actor.act(obs["frame"], k * DT)
            apply(actor, scorers, k, obs, command)
        obs, _, term, trunc, _ = envs.step(command)
        k += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    envs.close()
    return n * steps / elapsed, n * steps / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", type=Path)
    ap.add_argument("--reward", type=Path, help="also score every step with this reward model")
    ap.add_argument("--steps", type=int, default=200, help="timed steps per env per configuration")
    ap.add_argument("--repeats", type=int, default=3, help="measurements of each, alternating; medians reported")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--envs", default="1,2,4")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    policy, _ = load_policy(resolve_checkpoint(args.policy))
    make_scorer = None
    if args.reward is not None:
        from photon_policy.rl.ppo import reward_scorers
        from world_model_node.cli import resolve_checkpoint as resolve_world_model
        make_scorer, _ = reward_scorers(str(args.reward if args.reward.is_file() else args.reward / "best.pt"),
                                        str(resolve_world_model(None)))
    out = {"steps_per_env": args.steps, "repeats": args.repeats, "threads": args.threads, "envs": {}}
    for n in map(int, args.envs.split(",")):
        # Raw, acting, the baseline and scored take turns, `repeats` times, and each reports its median:
        # on a shared machine the load drifts, and alternating spreads that drift over all of them
        # alike. Per CPU second too: what this process spent, whatever else the cores were running.
        runs: dict[str, list[tuple[float, float]]] = {"raw": [], "policy": [], "eager_per_env": [],
                                                      "policy_and_reward": []}
        for _ in range(args.repeats):
            runs["raw"].append(rate(n, args.steps))
            runs["policy"].append(rate(n, args.steps, policy))
            runs["eager_per_env"].append(rate(n, args.steps, policy, actor_type=EagerPerEnv))
            if make_scorer is not None:
                runs["policy_and_reward"].append(rate(n, args.steps, policy, make_scorer))
        row = {}
        for clock, c in (("", 0), ("cpu_", 1)):
            median = {key: float(np.median([r[c] for r in vs])) for key, vs in runs.items() if vs}
            row[f"{clock}raw_steps_per_s"] = round(median["raw"], 1)
            for key in [key for key in median if key != "raw"]:
                row[f"{clock}{key}_steps_per_s"] = round(median[key], 1)
                row[f"{clock}{key}_fraction_of_raw"] = round(median[key] / median["raw"], 3)
        row["runs_steps_per_s"] = {key: [round(r[0], 1) for r in vs] for key, vs in runs.items() if vs}
        out["envs"][str(n)] = row
        print(json.dumps({n: row}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
