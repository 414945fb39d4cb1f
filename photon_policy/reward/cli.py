"""`photon train reward` and `photon eval reward`.

  photon train reward --clips DIR [--drives DIR] --out RUN [--design rlif|pvp|preference] [--speed-gate]
                      [--world-model RUN|FILE] [--holdout-seeds 2080-2099] [--config YAML] [--steps N]
  photon eval reward --ckpt RUN --data DRIVES [--clips DIR] --seeds 2080-2099 [--world-model RUN] [--json F]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from photon_policy.learning import run_args


def _world_model(path: Path | None) -> str:
    from world_model_node.cli import resolve_checkpoint

    return str(resolve_checkpoint(path))


def cmd_train(args: argparse.Namespace) -> int:
    from photon_policy.reward.train import RewardTrainConfig, train

    values = run_args.config_values(args, RewardTrainConfig)
    values.update({k: v for k, v in (("clips", str(args.clips)), ("drives", args.drives and str(args.drives)),
                                     ("design", args.design), ("speed_gate", args.speed_gate), ("holdout_seeds", args.holdout_seeds),
                                     ("feature_cache", args.feature_cache and str(args.feature_cache)))
                   if v is not None})
    if args.world_model is not None or not values.get("world_model"):
        values["world_model"] = _world_model(args.world_model)
    path = train(RewardTrainConfig(**values))
    print(f"[photon] reward checkpoint: {path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from photon_policy.reward import evaluate
    from photon_policy.seeds import parse_seeds

    if args.data is None or len(args.data) != 1:
        raise ValueError("photon eval reward needs --data DIR: one directory of held-out shadow drives")
    if args.seeds is None:
        raise ValueError("photon eval reward needs --seeds: the held-out seeds (never trained on)")
    ckpt = run_args.resolve_checkpoint(args.ckpt, "reward.pt", "reward model")
    report = evaluate.evaluate(ckpt, Path(_world_model(args.world_model)), args.data[0], args.clips,
                               parse_seeds(args.seeds), args.feature_cache, skip_s=args.skip_s,
                               progress=not args.quiet)
    print(evaluate.summary(report))
    if args.json:
        evaluate.write(report, args.json)
        print(f"[photon] wrote {args.json} and {args.json.with_suffix('.png')}")
    return 0


def add_train_commands(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("reward", help="reward model of good driving from shadow clips (and drives)")
    p.add_argument("--clips", type=Path, required=True, help="a shadow node's output_dir (index.jsonl + clip bags)")
    p.add_argument("--drives", type=Path, help="full shadow drives of the same fleet (trained on instead of clips)")
    p.add_argument("--design", choices=("rlif", "pvp", "preference"))
    p.add_argument("--speed-gate", action="store_true", default=None,
                   help="rlif: reward = forward speed x P(no intervention) (the compared designs' best)")
    p.add_argument("--world-model", type=Path, help="world model whose features it reads (default: the shipped one)")
    p.add_argument("--holdout-seeds", help="seeds never trained on, e.g. 2080-2099")
    p.add_argument("--feature-cache", type=Path, help="cache of the world model's features (default: RUN/features)")
    run_args.add_run_arguments(p, "RewardTrainConfig", data=False)
    p.set_defaults(func=cmd_train)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clips", type=Path, help="reward: shadow clips (held-out seeds' clips are scored in pairs)")
    parser.add_argument("--world-model", type=Path, help="reward: the world model (default: the shipped one)")
    parser.add_argument("--feature-cache", type=Path, help="reward: cache of the world model's features")
    parser.add_argument("--skip-s", type=float, default=1.0,
                        help="reward: seconds left out at the start of each drive (CarRacing's zoom-in)")
