"""`photon replay-test [--update-refs] [--refs test/replay] [--nodes policy,world_model,shadow]`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from photon_policy.replay.suites import DEFAULT_REFS, NODES


def cmd_replay_test(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from photon_policy.lockstep import RunError
    from photon_policy.replay.refs import ReferenceError
    from photon_policy.replay.runner import run_replay

    nodes = [n for item in args.nodes.split(",") for n in [item.strip()] if n]
    bar = None

    def on_frame(k: int, total: int, processes) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None or k == 0:
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, desc="replay", unit="frame", mininterval=0.5)
        bar.update(1)

    try:
        report = run_replay(args.refs, nodes, update_refs=args.update_refs, log_dir=args.log_dir,
                            budget_ms=args.budget_ms, on_frame=on_frame)
    except ReferenceError as exc:
        print(f"[photon] replay-test refused: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"[photon] replay-test failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    print(report.text(), end="")
    if not report.ok:
        where = report.results[0].run.log_dir.parent
        print(f"[photon] replay-test FAILED: outputs differ from the references (diff in {where / 'diff.txt'}); "
              "after an intended change re-pin with --update-refs", file=sys.stderr)
        return 1
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("replay-test", help="replay the reference bags through the real nodes in lockstep "
                                                  "and compare their outputs with the pinned references")
    p.add_argument("--refs", type=Path, default=DEFAULT_REFS,
                   help="directory with suites.yaml, bags/ and refs/ (default: test/replay)")
    p.add_argument("--nodes", default=",".join(NODES), help=f"comma-separated subset of {','.join(NODES)}")
    p.add_argument("--update-refs", action="store_true", help="re-pin the references to this run's outputs "
                                                              "(after an intended change)")
    p.add_argument("--budget-ms", type=float, help="per-frame compute budget for every node (default: each "
                                                   "node's budget_ms in suites.yaml); reported, not enforced")
    p.add_argument("--log-dir", type=Path, help="node logs and diff.txt (default: a temporary directory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_replay_test)
