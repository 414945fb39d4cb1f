"""`photon record` and `photon collect`: registered on the photon CLI by `add_commands(subparsers)`.

  photon record --out DIR [--topics T ...] [--storage mcap|sqlite3]
  photon collect --episodes N [--seeds LIST] [--noise X] --out DIR [--max-steps N] [--set NODE.PARAM=VALUE]
  photon collect --driver policy [--ckpt RUN] --episodes N --out DIR      # DAgger round
  photon bag reindex DIR                   # a bag cut by SIGKILL -> a complete, readable bag
  photon play BAG [--rate R] [--loop] [--start-offset S] [--topics T ...] [--remap OLD:=NEW ...] [--clock [HZ]]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from photon_policy.profiles import parse_overrides
from photon_policy.seeds import parse_seeds

COLLECT_FIRST_SEED = 1000
"""Collected seeds start here, so training data never overlaps the evaluation seeds 0-199."""


def cmd_record(args: argparse.Namespace) -> int:
    from photon_policy.bags.collect import recorder_profile
    from photon_policy.bags.recorder_node import main as recorder_main

    from photon_policy.bags.recorder import check_output_dir

    check_output_dir(args.out)  # before saying "recording"
    [spec] = recorder_profile(args.out, args.topics, args.storage).nodes
    print(f"[photon] recording into {args.out} until Ctrl-C", flush=True)
    return recorder_main(["photon-record", *spec.ros_args()])


def cmd_collect(args: argparse.Namespace) -> int:
    from photon_policy.bags.collect import collect

    if args.episodes is not None and args.episodes < 1:
        raise ValueError(f"--episodes {args.episodes}: must be >= 1")
    if args.seeds is not None:
        seeds = parse_seeds(args.seeds)
        if args.episodes is not None and args.episodes != len(seeds):
            raise ValueError(f"--episodes {args.episodes} but --seeds '{args.seeds}' lists {len(seeds)} seeds")
    elif args.episodes is not None:
        seeds = list(range(COLLECT_FIRST_SEED, COLLECT_FIRST_SEED + args.episodes))
    else:
        raise ValueError("give --episodes N (seeds 1000..1000+N-1) or --seeds LIST")
    if not (math.isfinite(args.noise) and args.noise >= 0.0):  # argparse's float() takes 'inf' and 'nan'
        raise ValueError(f"--noise {args.noise}: must be a finite number >= 0")
    checkpoint = None
    overrides = parse_overrides(args.set)
    if args.driver == "policy":
        from photon_policy.policy.cli import driving_checkpoint
        checkpoint = str(driving_checkpoint(args.ckpt, overrides))  # refused here, before any bag folder exists
    elif args.ckpt is not None:
        raise ValueError("--ckpt is for --driver policy")
    paths = collect(args.out, seeds, args.noise, max_steps=args.max_steps, progress=not args.quiet,
                    prefix="dagger_" if args.driver == "policy" else "ep_", driver=args.driver,
                    checkpoint=checkpoint, overrides=overrides)
    print(f"[photon] {len(paths)} bag(s) in {args.out}")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from photon_policy.bags.player import PlayOptions, load_bag, parse_remap
    from photon_policy.bags.player_node import run_player

    options = PlayOptions(rate=args.rate, loop=args.loop, start_offset=args.start_offset,
                          topics=tuple(args.topics or ()), remap=parse_remap(args.remap),
                          clock_hz=args.clock or 0.0, start_paused=args.start_paused)
    if not (math.isfinite(args.wait_for_subscribers) and args.wait_for_subscribers >= 0):
        raise ValueError(f"--wait-for-subscribers {args.wait_for_subscribers}: must be a finite number >= 0")
    bag = load_bag(args.bag, options)
    span = (bag.messages[-1][0] - bag.messages[0][0]) / 1e9
    print(f"[photon] playing {args.bag}: {len(bag.messages)} messages on {len(bag.topics)} topic(s), {span:.2f} s"
          + (" (space pauses)" if sys.stdin.isatty() else ""), flush=True)
    report = run_player(bag, options, args.wait_for_subscribers)
    print(f"[photon] {report.summary(options.rate)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(options.rate), indent=1) + "\n")
    for topic, n in sorted(report.published.items()):
        print(f"[photon]   {options.published_name(topic)}: {n}")
    return 0


def add_play_command(subparsers: argparse._SubParsersAction) -> None:
    play = subparsers.add_parser("play", help="publish a rosbag2 bag (MCAP or sqlite3) at its recorded rate, with "
                                              "its recorded QoS, like `ros2 bag play`")
    play.add_argument("bag", type=Path, help="bag directory")
    play.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    play.add_argument("--loop", action="store_true", help="play again from the start until Ctrl-C")
    play.add_argument("--start-offset", type=float, default=0.0, metavar="S", help="start S seconds into the bag")
    play.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics")
    play.add_argument("--remap", nargs="+", default=[], metavar="OLD:=NEW", help="publish OLD as NEW")
    play.add_argument("--clock", type=float, nargs="?", const=40.0, metavar="HZ",
                      help="publish the bag's time on /clock (default 40 Hz) for nodes with use_sim_time")
    play.add_argument("--start-paused", action="store_true",
                      help="start paused (space, or `ros2 param set /player paused false`, resumes)")
    play.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                      help="before playing, wait up to S seconds until every topic has a subscriber")
    play.add_argument("--json", type=Path, help="write the playback report (rate achieved, lateness) here")
    play.set_defaults(func=cmd_play)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `record`, `collect`, `play` and `bag` to the photon CLI's subparsers."""
    rec = subparsers.add_parser("record", help="record topics into a rosbag2 bag until Ctrl-C")
    rec.add_argument("--out", type=Path, required=True, help="bag directory to create (must not exist)")
    rec.add_argument("--topics", nargs="+", default=None, metavar="TOPIC",
                     help="topics to record (default: camera, imu, odom, commands, tf, sim, clock, diagnostics)")
    rec.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    rec.set_defaults(func=cmd_record)

    col = subparsers.add_parser("collect", help="record simulated episodes, one bag per episode: the expert "
                                                "drives, or the policy drives and the expert labels (DAgger)")
    col.add_argument("--episodes", type=int, help=f"number of episodes (seeds {COLLECT_FIRST_SEED}, "
                                                  f"{COLLECT_FIRST_SEED + 1}, ...)")
    col.add_argument("--seeds", help="explicit seeds, e.g. 1000-1099 or 1000,1005 (instead of --episodes)")
    col.add_argument("--noise", type=float, default=0.0,
                     help="expert steering noise std (rad); 0 = none. With noise the car executes the noisy "
                          "command (/drive) and the bag's labels (/teleop) are the expert's clean ones")
    col.add_argument("--driver", choices=["expert", "policy"], default="expert",
                     help="policy: the policy drives (sim-dagger profile), the expert labels every frame")
    col.add_argument("--ckpt", type=Path, help="policy checkpoint or run directory (default: the shipped policy)")
    col.add_argument("--out", type=Path, required=True, help="directory for the bags")
    col.add_argument("--max-steps", type=int, default=1000, help="steps per episode (default 1000)")
    col.add_argument("--quiet", action="store_true", help="no progress bar")
    col.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                     help="override a node parameter, e.g. expert.noise_correlation_time=0.2")
    col.set_defaults(func=cmd_collect)
    add_play_command(subparsers)
    add_bag_commands(subparsers)


def cmd_bag_reindex(args: argparse.Namespace) -> int:
    from photon_policy.bags.reindex import reindex

    result = reindex(args.bag, keep_original=not args.no_backup, force=args.force)
    if result.already_readable:
        print(f"[photon] {args.bag} is complete and readable: nothing to do (--force rewrites it)")
        return 0
    for warning in result.warnings:
        print(f"[photon] {warning}")
    print(f"[photon] reindexed {args.bag}: {result.messages} messages on {len(result.topics)} topic(s)"
          + (f"; the damaged storage kept as {', '.join(p.name for p in result.originals)}" if result.originals
             else ""))
    return 0


def add_bag_commands(subparsers: argparse._SubParsersAction) -> None:
    """`photon bag reindex DIR`."""
    bag = subparsers.add_parser("bag", help="bag tools").add_subparsers(dest="bag_command", required=True)
    rei = bag.add_parser("reindex", help="rebuild metadata.yaml and a complete MCAP/sqlite3 file for a bag cut "
                                         "short (e.g. a recorder killed by SIGKILL), like `ros2 bag reindex`")
    rei.add_argument("bag", type=Path, help="bag directory")
    rei.add_argument("--no-backup", action="store_true", help="delete the damaged storage file instead of "
                                                              "keeping it as <name>.orig")
    rei.add_argument("--force", action="store_true", help="rewrite even a bag that reads cleanly")
    rei.set_defaults(func=cmd_bag_reindex)
