"""`photon eval reward`: how well a reward model ranks driving the way the simulator's reward does.

On held-out drives (their seeds never trained on) the simulator's score is the judge, and only
the judge:
  episode   Spearman rank correlation between the model's return (the sum of r over the drive's
            model steps, the driver's commands scored) and the simulator's return over the same
            steps, across drives
  segment   the same over every 1-s segment of every drive (10 model steps; the simulator's return
            from the segment's first step to the step after its last: what its commands led to)
  clips     over every pair of held-out clips whose simulator outcome differs by more than
            `tie_per_s` points per second: the share of pairs the model orders the same way. Clips
            differ in length, so both sides are rates: score change per second, mean r.
The first `skip_s` of a drive (CarRacing's zoom-in, which no driver controls) is left out, as the
trainers leave it out. A "speed" row scores the normalised forward speed alone: the reference a
learned reward has to beat.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from photon_policy.learning.checkpoint import content_hash
from photon_policy.reward.data import drive_bags, drive_contexts, read_clip_dir
from photon_policy.reward.designs import SEGMENT_STEPS, segments
from photon_policy.reward.features import SPEED_COLUMN, Samples, load_samples
from photon_policy.reward.model import load_reward
from world_model_node.checkpoint import load_model as load_world_model

def rank(x: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank (as Spearman's rho needs)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, ranks)
    return (sums / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation; nan for fewer than 3 points or a constant side."""
    if len(a) < 3:
        return float("nan")
    ra, rb = rank(np.asarray(a, float)), rank(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


Scorer = Callable[[Samples], np.ndarray]


def model_scorer(model: torch.nn.Module) -> Scorer:
    @torch.no_grad()
    def score(s: Samples) -> np.ndarray:
        return model(torch.from_numpy(s.state), torch.from_numpy(s.driver.astype(np.float32))).numpy()
    return score


def speed_scorer(s: Samples) -> np.ndarray:
    return s.state[:, SPEED_COLUMN].astype(np.float64)


def score_drives(drives: list[Samples], scorer: Scorer, skip_s: float) -> dict:
    episodes, segs = [], []
    for s in drives:
        keep = np.flatnonzero(s.time >= skip_s)
        if len(keep) < SEGMENT_STEPS + 1:
            continue
        r, judge = scorer(s)[keep], s.judge[keep]
        episodes.append((r[:-1].sum(), judge[-1] - judge[0]))
        for sl in segments(len(keep) - 1):  # the step after each segment closes its return
            segs.append((r[sl].sum(), judge[sl.stop] - judge[sl.start]))
    ep, sg = np.array(episodes), np.array(segs)
    return {"episodes": len(ep), "episode_spearman": spearman(ep[:, 0], ep[:, 1]) if len(ep) else float("nan"),
            "segments": len(sg), "segment_spearman": spearman(sg[:, 0], sg[:, 1]) if len(sg) else float("nan"),
            "episode_points": ep.tolist()}


def score_clips(clips: list[Samples], scorer: Scorer, tie_per_s: float) -> dict:
    rates = []
    for s in clips:
        if len(s) < 2 or not np.isfinite(s.judge[[0, -1]]).all():
            continue
        span = s.time[-1] - s.time[0]
        rates.append((scorer(s)[:-1].mean(), (s.judge[-1] - s.judge[0]) / span))
    r = np.array(rates).reshape(-1, 2)
    i, j = np.triu_indices(len(r), 1)
    decided = np.abs(r[i, 1] - r[j, 1]) > tie_per_s
    agree = np.sign(r[i, 0] - r[j, 0]) == np.sign(r[i, 1] - r[j, 1])
    n = int(decided.sum())
    return {"clips": len(r), "clip_pairs": n, "clip_accuracy": float(agree[decided].mean()) if n else float("nan")}


def held_out(samples: list[Samples], seeds: set[int]) -> list[Samples]:
    return [s for s in samples if s.seed in seeds]


def evaluate(reward_ckpt: Path, world_model: Path, drives: Path, clips: Path | None, seeds: list[int],
             cache: Path | None, skip_s: float = 1.0, tie_per_s: float = 1.0, progress: bool = True) -> dict:
    """The report (see the module docstring) of the reward model and of the speed reference."""
    wm, wm_ckpt = load_world_model(world_model)
    wm_hash = content_hash(wm_ckpt)
    model, ckpt = load_reward(reward_ckpt, wm_hash)  # refused when trained on another world model
    held = set(seeds)
    drive_s = held_out(load_samples(drive_bags(drives), wm, wm_hash, cache, drive_contexts(drives),
                                    progress), held)
    if not drive_s:
        raise ValueError(f"{drives}: no drive with a seed in the held-out seeds")
    clip_s = []
    if clips is not None:
        lines, bags = read_clip_dir(clips)
        clip_s = load_samples([bags[l["clip"]] for l in lines if l.get("seed") in held], wm, wm_hash, cache,
                              None, progress)
    rc = ckpt["model_config_obj"]
    report = {"checkpoint": str(reward_ckpt), "design": rc.design + (" x speed" if rc.speed_gate else ""),
              "world_model_sha256": wm_hash, "seeds": sorted(held), "skip_s": skip_s, "tie_per_s": tie_per_s}
    for name, scorer in (("model", model_scorer(model)), ("speed", speed_scorer)):
        report[name] = score_drives(drive_s, scorer, skip_s) | (score_clips(clip_s, scorer, tie_per_s) if clip_s else {})
    return report


def plot(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = np.array(report["model"]["episode_points"]).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(pts[:, 1], pts[:, 0], s=14)
    ax.set_xlabel("simulator return (held-out drive)")
    ax.set_ylabel(f"reward model return ({report['design']})")
    ax.set_title(f"episode Spearman {report['model']['episode_spearman']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(report: dict) -> str:
    rows = []
    for name in ("model", "speed"):
        m = report[name]
        rows.append(f"  {name + ' (' + report['design'] + ')' if name == 'model' else 'speed reference':22s} "
                    f"episode rho {m['episode_spearman']:.3f} ({m['episodes']})  "
                    f"segment rho {m['segment_spearman']:.3f} ({m['segments']})  "
                    + (f"clip pairs {100 * m['clip_accuracy']:.1f} % ({m['clip_pairs']})" if "clip_accuracy" in m else ""))
    return "\n".join(rows)


def write(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    plot(report, path.with_suffix(".png"))
