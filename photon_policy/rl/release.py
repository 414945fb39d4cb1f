"""An RL checkpoint made into the policy file the node ships (`models/policy.pt`): the same weights
(hash unchanged) without what only training needs to go on (the optimizer, the value net and log std
under extra["rl"]), with a note of which file and update it came from.

    python -m photon_policy.rl.release runs/rl/update_00100.pt models/policy.pt

Then `photon replay-test --update-refs` re-pins the replay references to it and `photon replay-test`
checks them (docs/REPLAY_REGRESSION.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from photon_policy.learning.checkpoint import write_checkpoint
from photon_policy.policy.checkpoint import load_policy, load_policy_checkpoint


def release(src: str | Path, dst: str | Path) -> dict:
    """Write `src` (a policy checkpoint, read and hash-checked) to `dst` without its training state;
    returns the checkpoint written, read back as the node reads it."""
    ckpt = load_policy_checkpoint(src)
    ckpt.pop("model_config_obj")
    rl = ckpt["extra"].pop("rl", None)
    ckpt["optimizer"] = None
    ckpt["extra"]["released_from"] = f"{Path(src).parent.name}/{Path(src).name}"  # machine paths mean nothing elsewhere
    if rl:
        ckpt["extra"]["rl_update"] = rl["update"]
    write_checkpoint(dst, ckpt)
    return load_policy(dst)[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="a policy checkpoint, e.g. an RL run's update_NNNNN.pt")
    p.add_argument("dst", help="where to write it, e.g. models/policy.pt")
    args = p.parse_args(argv)
    out = release(args.src, args.dst)
    print(f"[photon] {args.dst}: weights {out['weights_sha256'][:12]} from {args.src} "
          f"(RL update {out['extra'].get('rl_update')}), training state dropped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
