"""`photon shadow ...`: registered on the photon CLI by `add_commands(subparsers)`.

  photon shadow fleet --seeds 2000-2099 --out DIR [--drivers clean,drift,pulses,late_braking]
                      [--max-steps N] [--set NODE.PARAM=VALUE]
  photon shadow attribute DIR          # redo events.jsonl (who was heading off the road)
  photon shadow report DIR [--top N] [--json FILE]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from photon_policy.profiles import parse_overrides
from photon_policy.seeds import parse_seeds

EVAL_SEEDS = range(100, 200)
"""Kept for evaluation: a fleet never drives them."""


def cmd_fleet(args: argparse.Namespace) -> int:
    from photon_policy.shadow.fleet import DRIVERS, fleet

    seeds = parse_seeds(args.seeds)
    reserved = sorted(set(seeds) & set(EVAL_SEEDS))
    if reserved:
        raise ValueError(f"--seeds includes {len(reserved)} evaluation seed(s) (100-199), e.g. {reserved[0]}")
    drivers = args.drivers.split(",") if args.drivers else list(DRIVERS)
    results = fleet(args.out, seeds, drivers, max_steps=args.max_steps, progress=not args.quiet,
                    overrides=parse_overrides(args.set), log_dir=args.log_dir)
    events = sum(len(r.events) for r in results)
    print(f"[photon] {len(results)} episode(s), {events} event(s) in {args.out}; "
          f"`photon shadow report {args.out}` summarises them")
    return 0


def cmd_attribute(args: argparse.Namespace) -> int:
    from photon_policy.shadow.fleet import reattribute

    n = reattribute(args.dir, progress=not args.quiet)
    print(f"[photon] {n} event(s) attributed in {args.dir / 'events.jsonl'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from photon_policy.shadow.report import report

    summary = report(args.dir, top=args.top, json_path=args.json)
    print(summary.text())
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `shadow fleet` and `shadow report` to the photon CLI's subparsers."""
    shadow = subparsers.add_parser("shadow", help="shadow mode: simulated fleets and reports of where the "
                                                  "policy disagrees with the driver")
    sub = shadow.add_subparsers(dest="shadow_command", required=True)
    fl = sub.add_parser("fleet", help="seeded lockstep episodes of sim-shadow (expert drives, policy in shadow), "
                                      "with clips, full drives and who was heading off the road")
    fl.add_argument("--seeds", required=True, help="e.g. 2000-2099 (100-199 are kept for evaluation)")
    fl.add_argument("--out", type=Path, required=True, help="output directory (a rerun skips finished seeds)")
    fl.add_argument("--drivers", help="driver variants cycled over the seeds (default: all of "
                                      "clean,drift,pulses,late_braking)")
    fl.add_argument("--max-steps", type=int, default=1000)
    fl.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                    help="override a node parameter for every episode, e.g. shadow.open_threshold=1.5")
    fl.add_argument("--log-dir", type=Path, help="node logs (default: a temporary directory)")
    fl.add_argument("--quiet", action="store_true", help="no progress bar")
    fl.set_defaults(func=cmd_fleet)

    att = sub.add_parser("attribute", help="redo who was heading off the road for every event of a fleet "
                                           "(rewrites DIR/events.jsonl)")
    att.add_argument("dir", type=Path, help="a fleet's --out")
    att.add_argument("--quiet", action="store_true")
    att.set_defaults(func=cmd_attribute)

    rep = sub.add_parser("report", help="events per minute and per km, plots, top events with thumbnails, JSON")
    rep.add_argument("dir", type=Path, help="a shadow node's output_dir, or a fleet's --out")
    rep.add_argument("--top", type=int, default=5, help="events shown with a thumbnail strip (default 5)")
    rep.add_argument("--json", type=Path, help="where to write the JSON (default DIR/report/report.json)")
    rep.set_defaults(func=cmd_report)
