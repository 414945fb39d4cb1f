"""In-process rollout throughput: environment steps per second at 1, 2 and 4 Gymnasium envs with the
policy acting (the node's PolicyRuntime, one per env, as `photon train rl` steps them), beside the
raw environment (a fixed command, no policy) in the same run. Optionally with the learned reward
scoring every step too (--reward RUN). Prints JSON. Target (issue 12): policy >= 60 % of raw at 2 envs.

    .venv/bin/python benchmarks/rl_throughput.py [--policy RUN|FILE] [--reward RUN] [--steps 200] [--threads 1]
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
from photon_policy.rl.actor import BatchActor, FrozenTrunk, apply
from photon_policy.rl.env import make_envs
from photon_policy.sim.carracing import DT

SEEDS = list(range(2080, 2100))


def rate(n: int, steps: int, policy=None, make_scorer=None) -> float:
    """Env steps per second over `steps` steps per env (after 20 steps of warm-up)."""
    envs = make_envs(n, SEEDS, 10_000)
    actor = BatchActor(FrozenTrunk(policy), n) if policy is not None else None
    scorers = [make_scorer() for _ in range(n)] if make_scorer else []
    obs, _ = envs.reset(seed=0)
    k, fixed = np.zeros(n, int), np.tile(np.array([0.0, 40.0], np.float32), (n, 1))
    start = None
    for t in range(steps + 20):
        if t == 20:
            start = time.perf_counter()
        command = fixed
        if actor is not None:
            command, _, _ = actor.act(obs["frame"], k * DT)
            apply(actor, scorers, k, obs, command)
        obs, _, term, trunc, _ = envs.step(command)
        k += 1
    elapsed = time.perf_counter() - start
    envs.close()
    return n * steps / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", type=Path)
    ap.add_argument("--reward", type=Path, help="also score every step with this reward model")
    ap.add_argument("--steps", type=int, default=200, help="timed steps per env per configuration")
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
    out = {"steps_per_env": args.steps, "threads": args.threads, "envs": {}}
    for n in map(int, args.envs.split(",")):
        raw = rate(n, args.steps)
        acting = rate(n, args.steps, policy)
        row = {"raw_steps_per_s": round(raw, 1), "policy_steps_per_s": round(acting, 1),
               "policy_fraction_of_raw": round(acting / raw, 3)}
        if make_scorer is not None:
            scored = rate(n, args.steps, policy, make_scorer)
            row |= {"policy_and_reward_steps_per_s": round(scored, 1), "with_reward_fraction_of_raw": round(scored / raw, 3)}
        out["envs"][str(n)] = row
        print(json.dumps({n: row}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
