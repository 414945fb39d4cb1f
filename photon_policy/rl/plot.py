"""Score against environment steps for RL runs side by side, from their log.csv (the periodic
evaluation's simulator score on the eval seeds), with a reference line (e.g. the starting policy).

    python -m photon_policy.rl.plot runs/rl runs/rl-oracle --labels learned oracle \
        --reference 918.2 --reference-label BC --out docs/rl_arms.png
"""
from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path


def eval_curve(run: Path) -> tuple[list[int], list[float]]:
    """(env steps, eval score) at each evaluation of the run; ValueError naming the file when it has none."""
    path = run / "log.csv"
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if not math.isnan(float(r.get("eval_score") or "nan"))]
    if not rows:
        raise ValueError(f"{path}: no evaluation rows (eval_score)")
    return [int(float(r["env_steps"])) for r in rows], [float(r["eval_score"]) for r in rows]


def plot(runs: list[Path], labels: list[str], out: Path, reference: float | None = None,
         reference_label: str = "start") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for run, label in zip(runs, labels):
        steps, scores = eval_curve(run)
        ax.plot(steps, scores, marker="o", ms=3, label=label)
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=reference_label)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("simulator score (eval seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="RL run directories (each with log.csv)")
    parser.add_argument("--labels", nargs="+", help="one per run (default: the directory names)")
    parser.add_argument("--reference", type=float, help="a horizontal line, e.g. the starting policy's score")
    parser.add_argument("--reference-label", default="start")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    labels = args.labels or [r.name for r in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"{len(labels)} labels for {len(args.runs)} runs")
    try:
        plot(args.runs, labels, args.out, args.reference, args.reference_label)
    except (OSError, ValueError) as exc:
        parser.exit(1, f"[photon] {exc}\n")
    print(f"[photon] wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
