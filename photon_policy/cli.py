"""`photon`: run profiles, evaluate drivers, and the demo.

  photon up <profile> [--set node.param=value ...] [--with optional_node ...] [--dry-run]
  photon eval --driver expert|policy [--ckpt RUN] --seeds 0-99 [--workers N|auto] [--realtime] [--json out.json]
  photon demo [--driver policy|expert] [--seed N]
  photon record --out DIR [--topics ...]
  photon play BAG [--rate R] [--loop] [--clock [HZ]] [--remap OLD:=NEW ...]     # like ros2 bag play
  photon collect --episodes N [--noise X] --out DIR
  photon collect --driver policy [--ckpt RUN] --episodes N --out DIR      # DAgger: the expert labels
  photon train world-model --data DIR --out RUN
  photon train policy --world-model RUN --data DIR [--data DIR2 ...] --out RUN [--scratch]
  photon eval world-model [--ckpt RUN] --data DIR [--json out.json]
  photon train reward --clips DIR [--drives DIR] --out RUN [--design rlif|pvp|preference]
  photon eval reward --ckpt RUN --data DRIVES [--clips DIR] --seeds 2080-2099
  photon train rl --policy RUN --reward RUN --out RUN [--envs 2] [--kl 1.0] [--oracle]
  photon export [--ckpt RUN] [--out FILE]
  photon shadow fleet --seeds 2000-2099 --out DIR      # expert drives, policy in shadow: clips
  photon shadow report DIR
  photon replay-test [--update-refs] [--refs test/replay] [--nodes policy,world_model,shadow]
"""
from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from photon_policy.bags.cli import add_commands as add_bag_commands
from photon_policy.reward.cli import add_eval_arguments as add_reward_eval_arguments
from photon_policy.reward.cli import add_train_commands as add_reward_train_commands
from photon_policy.rl.cli import add_train_commands as add_rl_train_commands
from photon_policy.profiles import ProfileError, load_profile, parse_overrides, profile_names
from photon_policy.replay.cli import add_commands as add_replay_commands
from photon_policy.seeds import parse_seeds
from photon_policy.shadow.cli import add_commands as add_shadow_commands
from photon_policy.policy.cli import add_export_command
from photon_policy.policy.cli import add_train_commands as add_policy_train_commands
from world_model_node.cli import add_eval_arguments as add_world_model_eval_arguments
from world_model_node.cli import add_train_commands as add_world_model_train_commands


def cmd_up(args: argparse.Namespace) -> int:
    from photon_policy.launcher import ProfileProcesses
    from photon_policy.profiles import node_command

    profile = load_profile(args.profile)
    overrides = parse_overrides(args.set)
    with_nodes = [name for item in args.with_nodes for name in item.split(",") if name]
    selected = profile.selected(with_nodes)
    if args.dry_run:
        for spec in selected:
            print(shlex.join(node_command(spec, overrides.get(spec.name))))
        return 0
    print(f"[photon] up {profile.name}: {profile.description}", flush=True)
    processes = ProfileProcesses(profile, overrides, with_nodes=with_nodes)
    processes.start()
    try:
        ended = processes.wait_any()
        print(f"[photon] node '{ended.name}' exited with code {ended.returncode}; stopping the others",
              flush=True)
    except KeyboardInterrupt:
        print("[photon] interrupted: stopping nodes", flush=True)
    finally:
        codes = processes.stop()
    failed = {name: code for name, code in codes.items() if code != 0}
    for name, code in failed.items():
        print(f"[photon] node '{name}' exited with code {code}", file=sys.stderr)
    return 1 if failed else 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.target == "world-model":
        from world_model_node.cli import cmd_eval as eval_world_model
        if args.data is None:
            raise ValueError("photon eval world-model needs --data DIR (held-out bags)")
        return eval_world_model(args)
    if args.target == "reward":
        from photon_policy.reward.cli import cmd_eval as eval_reward
        return eval_reward(args)
    from photon_policy.evaluation import auto_workers, evaluate

    seeds = parse_seeds(args.seeds or "0-9")
    overrides = parse_overrides(args.set)
    checkpoint = None
    if args.driver == "policy":
        from photon_policy.policy.cli import driving_checkpoint
        checkpoint = driving_checkpoint(args.ckpt, overrides)  # refused here, before any node starts
    elif args.ckpt is not None:
        raise ValueError("--ckpt is for --driver policy")
    workers = auto_workers(len(seeds)) if args.workers == "auto" else min(args.workers, len(seeds))
    if args.realtime and workers > 1:
        print(f"[photon] warning: --realtime with {workers} workers: the pairs share this machine's cores, so "
              "late and dropped frames measure their contention as much as the driver", file=sys.stderr)
    report = evaluate(args.driver, seeds, max_steps=args.max_steps, overrides=overrides,
                      log_dir=args.log_dir, progress=not args.quiet, checkpoint=checkpoint, realtime=args.realtime,
                      workers=workers)
    if args.json:
        report.write(args.json)
        print(f"[photon] wrote {args.json} and {args.json.with_suffix('.png')}")
    if not args.quiet:
        for e in report.episodes:
            late = f", {e.timing['late_steps']} late, {e.timing['dropped_frames']} dropped" if args.realtime else ""
            print(f"  seed {e.seed:4d}: {e.score:7.1f}  ({e.steps} steps, {e.reason}{late})")
    print(report.summary())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from photon_policy.evaluation import evaluate

    driven_by = {"policy": "the shipped policy (camera -> world-model latent -> policy -> /drive)",
                 "expert": "the expert (pure pursuit on the track centre line)"}[args.driver]
    print(f"[photon] demo: {driven_by} drives CarRacing-v3 seed {args.seed} "
          "through the ROS loop (lockstep, headless); starting the nodes takes ~10 s", flush=True)
    report = evaluate(args.driver, [args.seed], progress=True)
    e = report.episodes[0]
    print(f"[photon] {args.driver} score on seed {e.seed}: {e.score:.1f} in {e.steps} steps ({e.reason}), "
          f"{report.steps_per_second:.0f} steps/s")
    return 0


def workers_arg(text: str) -> int | str:
    """`--workers`: a positive count or `auto`."""
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is neither a number nor 'auto'") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} workers: at least 1")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photon", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run a profile's nodes until Ctrl-C (where `ros2 launch` is absent)")
    up.add_argument("profile", help=f"one of: {', '.join(profile_names())}")
    up.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                    help="override a node parameter, e.g. simulator.mode=lockstep")
    up.add_argument("--with", dest="with_nodes", action="append", default=[], metavar="NODE[,NODE]",
                    help="also run these optional nodes of the profile (e.g. car: world_model, recorder)")
    up.add_argument("--dry-run", action="store_true", help="print the node command lines and exit")
    up.set_defaults(func=cmd_up)

    ev = sub.add_parser("eval", help="score a driver through the ROS loop (lockstep, or --realtime), the world "
                                     "model on bags, or a reward model on shadow drives")
    ev.add_argument("target", nargs="?", choices=["world-model", "reward"],
                    help="world-model: PSNR/SSIM/counterfactuals on held-out bags; reward: rank correlation with "
                         "the simulator's return on held-out shadow drives; omit to score a driver")
    ev.add_argument("--driver", choices=["expert", "policy"], default="expert")
    ev.add_argument("--seeds", help="e.g. 0-99 or 3,7,11 (default 0-9; reward: the held-out seeds, required)")
    ev.add_argument("--max-steps", type=int, default=1000)
    ev.add_argument("--realtime", action="store_true",
                    help="the simulator at its 50 Hz wall clock, as on a car (default: lockstep); reports late, "
                         "stale and dropped frames and the command age at each step")
    ev.add_argument("--workers", type=workers_arg, default=1, metavar="N|auto",
                    help="simulator/driver pairs side by side, the seeds dealt between them (default 1); worker i "
                         "uses ROS_DOMAIN_ID = yours + i (worker 0 yours; all must be <= 101), so two evals on "
                         "one machine need ROS_DOMAIN_IDs N apart; auto: one per core, at most one per seed")
    ev.add_argument("--json", type=Path, help="write the report here (and a plot beside it)")
    ev.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE")
    ev.add_argument("--log-dir", type=Path, help="node logs (default: a temporary directory)")
    ev.add_argument("--quiet", action="store_true")
    add_world_model_eval_arguments(ev)
    add_reward_eval_arguments(ev)
    ev.set_defaults(func=cmd_eval)

    train = sub.add_parser("train", help="train a model").add_subparsers(dest="model", required=True)
    add_world_model_train_commands(train)
    add_policy_train_commands(train)
    add_reward_train_commands(train)
    add_rl_train_commands(train)
    add_export_command(sub)

    demo = sub.add_parser("demo", help="the main job: drive one simulated episode and print its score")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--driver", choices=["policy", "expert"], default="policy")
    demo.set_defaults(func=cmd_demo)

    add_bag_commands(sub)
    add_shadow_commands(sub)
    add_replay_commands(sub)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # A shell starts background jobs with SIGINT ignored, and Python keeps an inherited
    # SIG_IGN: `photon up ... &` would then ignore the Ctrl-C (SIGINT) meant to stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A supervisor stops us with SIGTERM: end like a Ctrl-C, so every node is stopped (and
    # publishes its safe state) before we exit.
    signal.signal(signal.SIGTERM, _terminate)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ProfileError, ValueError, FileNotFoundError) as exc:
        # FileNotFoundError: a path the user gave does not exist or holds nothing usable
        # (e.g. `--data` with no bags); its message names the path.
        print(f"photon: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        # Our own failures (bad bag, crashed node, refused checkpoint) explain themselves;
        # anything else keeps its traceback.
        if not type(exc).__module__.startswith(("photon_policy.", "world_model_node.")):
            raise
        print(f"photon: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
