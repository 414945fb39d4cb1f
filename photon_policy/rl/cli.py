"""`photon train rl` (photon_policy.rl.ppo). Imports nothing of the simulator until it runs: the
CLI is loaded on a car, where gymnasium must not be (test_car_imports)."""
from __future__ import annotations

import argparse
from pathlib import Path

from photon_policy.learning import run_args


def cmd_train(args: argparse.Namespace) -> int:
    from photon_policy.policy.cli import resolve_checkpoint as resolve_policy
    from photon_policy.rl.ppo import RLConfig, train
    from world_model_node.cli import resolve_checkpoint as resolve_world_model

    values = run_args.config_values(args, RLConfig)
    values["policy"] = str(resolve_policy(args.policy))
    if args.reward is not None:
        values["reward"] = str(run_args.resolve_checkpoint(args.reward, "reward.pt", "reward model"))
    values["reward_world_model"] = str(resolve_world_model(args.world_model))
    for name in ("oracle", "road_gate", "takeover_frames", "envs", "kl", "seeds", "eval_seeds"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.max_steps is not None:
        values["total_steps"] = values.pop("max_steps")
    values.pop("batch_size", None), values.pop("device", None), values.pop("strict_data", None)
    path = train(RLConfig(**values))
    print(f"[photon] RL policy checkpoint: {path}")
    return 0


def add_train_commands(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("rl", help="PPO fine-tuning of the policy in simulation, scored by the learned reward")
    p.add_argument("--policy", type=Path, help="policy run or checkpoint to start from (default: the shipped one)")
    p.add_argument("--reward", type=Path, help="reward run or checkpoint (photon train reward)")
    p.add_argument("--oracle", action="store_true", default=None, help="score with the simulator's reward instead")
    p.add_argument("--road-gate", action="store_true", default=None,
                   help="scale the learned reward by the share of the car on the road in its camera frame")
    p.add_argument("--takeover-frames", type=int,
                   help="end a training episode after this many frames in a row off the road (0: never)")
    p.add_argument("--world-model", type=Path, help="the world model the reward reads (default: the shipped one)")
    p.add_argument("--envs", type=int, help="environments stepped in this process")
    p.add_argument("--kl", type=float, help="weight of the KL anchor to the starting policy (0: none)")
    p.add_argument("--seeds", help="training tracks, e.g. 0-99")
    p.add_argument("--eval-seeds", help="evaluation tracks")
    run_args.add_run_arguments(p, "RLConfig", data=False)
    p.set_defaults(func=cmd_train)
