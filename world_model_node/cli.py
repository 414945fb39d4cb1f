"""`photon train world-model` and `photon eval world-model`.

  photon train world-model --data DIR [--data DIR2 ...] --out RUN [--config YAML] [--steps N] [--init CKPT]
  torchrun --nproc_per_node=2 -m photon_policy.cli train world-model --data DIR --out RUN   # DDP
  photon eval world-model [--ckpt RUN|FILE] --data DIR [--json out.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from photon_policy.learning import run_args

SHIPPED = "world_model.pt"


def resolve_checkpoint(ckpt: Path | None) -> Path:
    """A run directory means its best.pt; nothing means the shipped model."""
    return run_args.resolve_checkpoint(ckpt, SHIPPED, "world model")


def train_config_from_args(args: argparse.Namespace):
    from world_model_node.model import WorldModelConfig
    from world_model_node.train import TrainConfig

    values = run_args.config_values(args, TrainConfig)
    values["model"] = WorldModelConfig(**(values.get("model") or {}))
    if args.init is not None:
        values["init_from"] = str(resolve_checkpoint(args.init))
    return TrainConfig(**values)


def cmd_train(args: argparse.Namespace) -> int:
    from world_model_node.train import train

    path = train(train_config_from_args(args))
    print(f"[photon] world model checkpoint: {path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from photon_policy.learning.loop import load_episodes
    from world_model_node.evaluate import COUNTERFACTUAL_CONTEXTS, evaluate

    ckpt = resolve_checkpoint(args.ckpt)
    print(f"[photon] reading the bags under {', '.join(map(str, args.data))}", flush=True)
    episodes = load_episodes(args.data, args.strict_data)
    if args.ground_truth != "none":
        print(f"[photon] {len(episodes)} episode(s); the counterfactual's ground truth replays the simulator "
              f"for up to {COUNTERFACTUAL_CONTEXTS} contexts (about 0.5 s each); --ground-truth none skips it",
              flush=True)
    out_dir = args.json.parent if args.json else None
    report = evaluate(ckpt, episodes, out_dir=out_dir, latency_runs=args.latency_runs,
                      ground_truth=args.ground_truth, progress=True)
    report["checkpoint"] = str(ckpt)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"[photon] wrote {', '.join([str(args.json), *report['files']])}")
    print(f"{'horizon s':>9} {'PSNR model':>10} {'copy-last':>9} {'zero-act':>8} {'SSIM model':>10} {'copy-last':>9}")
    for i, h in enumerate(report["horizons_s"]):
        p, s = report["psnr"], report["ssim"]
        print(f"{h:9.2f} {p['model'][i]:10.2f} {p['copy_last'][i]:9.2f} {p['zero_action'][i]:8.2f} "
              f"{s['model'][i]:10.3f} {s['copy_last'][i]:9.3f}")
    cf = report["counterfactual"]
    if cf["ground_truth"] == "simulator":
        sim = cf["simulator"]
        print(f"counterfactual at {cf['horizon_s']} s: model passes {cf['passed']} of the {cf['determinate']} contexts "
              f"where the simulator's own branches pass ({report['counterfactual_pass_rate']:.3f}); the simulator "
              f"passes {sim['pass_rate']:.3f} of {sim['road_visible']} contexts with road in view; "
              f"model alone {cf['model_pass_rate_where_road_visible']:.3f} of {cf['road_visible']}")
        bp = cf["branch_psnr"]
        for name in ("left", "right"):
            print(f"  {name} branch PSNR per horizon: model {_fmt(bp[name]['model'])}, "
                  f"straight prediction {_fmt(bp[name]['straight_prediction'])}")
    else:
        print(f"counterfactual pass rate: {report['counterfactual_pass_rate']:.3f} "
              f"(no simulator ground truth: {cf.get('ground_truth_note', '')})")
    return 0


def _fmt(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def add_train_commands(train_sub: argparse._SubParsersAction) -> None:
    wm = train_sub.add_parser("world-model", help="train the world model on recorded bags")
    run_args.add_run_arguments(wm, "TrainConfig (with `model:` for the network)")
    wm.add_argument("--init", type=Path, help="fine-tune: start from this checkpoint or run directory's weights")
    wm.set_defaults(func=cmd_train)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", type=Path, help="checkpoint file or run directory (default: the shipped model)")
    parser.add_argument("--data", type=Path, action="append", help="held-out bags to evaluate on (repeatable)")
    parser.add_argument("--strict-data", action="store_true",
                        help="stop at a bag that cannot be read (default: skip and list it)")
    parser.add_argument("--latency-runs", type=int, default=0, help="also time video_pred at batch 1")
    parser.add_argument("--ground-truth", choices=("auto", "simulator", "none"), default="auto",
                        help="counterfactual ground truth: replay simulator bags and branch them "
                             "(auto: when every bag has a simulator seed)")
