"""Where a policy loses laps: its noiseless in-process drive of each track (ppo.drive, the code RL
evaluates with), in parallel processes, sorted into the three kinds an RL config needs:

  lost    the lap was lost at a frame (a missed tile or off the road): a start track (`starts`)
  slow    every tile so far, but the 1000 steps ran out: train on it from the line (`seeds`)
  lap     finished

    python -m photon_policy.rl.failures --policy models/policy.pt --seeds 400-499 --workers 2 --json F

The JSON holds one row per track (score, kind, the frame the lap was lost at) and the lists.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import time
from pathlib import Path

import torch
from tqdm import tqdm

from photon_policy.policy.checkpoint import load_policy
from photon_policy.rl.actor import FrozenTrunk
from photon_policy.rl.ppo import RLConfig, drive
from photon_policy.seeds import parse_seeds

_trunk: FrozenTrunk | None = None
_config: RLConfig | None = None


def _load(policy: str, max_steps: int) -> None:
    global _trunk, _config
    torch.set_num_threads(1)
    _config = RLConfig(policy=policy, oracle=True, max_episode_steps=max_steps)
    _trunk = FrozenTrunk(load_policy(policy)[0])


def classify(seed: int) -> dict:
    d = drive(_config, _trunk, None, seed, _config.max_episode_steps)
    failure = None if d.lap_complete else d.failure
    kind = "lap" if d.lap_complete else ("slow" if failure is None else "lost")
    return {"seed": seed, "score": round(d.score, 1), "kind": kind, "lost_at": failure, "steps": len(d.commands)}


def find(policy: str, seeds: list[int], workers: int, max_steps: int = 1000, time_limit_s: float = math.inf,
         progress: bool = True) -> list[dict]:
    """The rows of the tracks driven; past time_limit_s the drives still running are dropped (the
    tracks are taken in order, so what is left out is the end of `seeds`)."""
    load_policy(policy)  # here, naming the file: a pool whose initializer fails respawns its workers for ever
    deadline = time.monotonic() + time_limit_s
    rows = []
    with mp.get_context("spawn").Pool(workers, _load, (policy, max_steps)) as pool:
        for row in tqdm(pool.imap(classify, seeds), total=len(seeds), disable=not progress, unit="track"):
            rows.append(row)
            if time.monotonic() > deadline:
                break
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True, type=Path)
    p.add_argument("--seeds", required=True, help="tracks, e.g. 400-499,600-659")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--time-limit", type=float, default=math.inf, help="s: stop there with the tracks driven so far")
    p.add_argument("--json", type=Path, help="write the rows and lists here")
    args = p.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    rows = find(str(args.policy), seeds, args.workers, args.max_steps, args.time_limit)
    lists = {kind: [r["seed"] for r in rows if r["kind"] == kind] for kind in ("lost", "slow", "lap")}
    for r in rows:
        if r["kind"] != "lap":
            print(f"[photon] track {r['seed']}: {r['kind']}, score {r['score']}"
                  + (f", lap lost at frame {r['lost_at']}" if r["lost_at"] is not None else ""))
    print(f"[photon] {len(rows)} of {len(seeds)} tracks: {len(lists['lap'])} laps, "
          f"lost {lists['lost']}, slow {lists['slow']}; mean score "
          f"{sum(r['score'] for r in rows) / max(len(rows), 1):.1f}")
    if args.json:
        args.json.write_text(json.dumps({"policy": str(args.policy), "rows": rows, "lost": lists["lost"], "slow": lists["slow"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
