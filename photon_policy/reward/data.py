"""Shadow-mode bags as per-frame streams: what the driver did, what the policy would have done,
and whether a divergence event was open (the shadow node's own verdict).

A stream is one bag (a clip or a full drive) read by photon_policy.bags.reader with the driver's
/teleop as the applied command (the fleet's gate forwards it to the car), plus, aligned to the
camera frames the same way (newest message stamped at or before the frame):
  policy   /policy/drive: the shadow policy's command
  event    /shadow/divergence is_event
  judge    /sim/episode score: the simulator's cumulative reward. Evaluation only: no design
           reads it (data.Stream keeps it apart so a design cannot take it by accident).

A clip directory is checked before anything is trained on it: every line of index.jsonl must name
a clip bag that exists and is complete (not `truncated`, not `error`, readable); otherwise
ShadowDataError names the index line and the bag.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from photon_policy.bags.episode_arrays import EpisodeArrays
from photon_policy.bags.reader import (BagError, _align, _commands, _deserialized, _source, _stamp_ns, _statuses,
                                       list_bags, read_episodes, read_raw)

POLICY, DIVERGENCE, EPISODE = "/policy/drive", "/shadow/divergence", "/sim/episode"
DIVERGENCE_TYPE = "photon_msgs/msg/Divergence"


class ShadowDataError(RuntimeError):
    """Shadow logs that cannot be used; the message names the file and what is wrong."""


@dataclass
class Stream:
    name: str
    arrays: EpisodeArrays
    """Frames, applied (= the driver's) commands, IMU, odometry: what the world model reads."""
    policy: np.ndarray
    """(T, 2) the shadow policy's command in force at each frame."""
    event: np.ndarray
    """(T,) bool: a divergence event was open at the frame."""
    judge: np.ndarray
    """(T,) float64: the simulator's score (cumulative reward) at the frame. Evaluation only."""
    seed: int | None
    context: str = ""
    """The driver variant (the fleet's context), or ""."""


def read_stream(bag: Path, context: str = "") -> Stream:
    """One shadow bag (a clip or a full drive); ShadowDataError naming the bag if it cannot be read
    or lacks the policy's or the shadow node's topic."""
    try:
        [read] = read_episodes(bag, drive_topic="/teleop")
        raw, _, warnings = read_raw(bag, {POLICY, DIVERGENCE, EPISODE})
    except (BagError, ValueError) as exc:
        raise ShadowDataError(f"{bag}: cannot read the shadow bag ({exc})") from exc
    # A gap in the camera stream is a segment boundary the features respect; anything else the
    # reader reports is damage, and training on part of a bag would be silent data loss.
    warnings = [w for w in read.warnings + warnings if " gap(s) in " not in w]
    if warnings:
        raise ShadowDataError(f"{bag}: damaged or incomplete shadow bag: {'; '.join(warnings)}")
    missing = [t for t in (POLICY, DIVERGENCE) if not raw.get(t)]
    if missing:
        raise ShadowDataError(f"{bag}: no messages on {', '.join(missing)}: not a shadow-mode bag")
    a = read.arrays
    t = np.round(a.stamps * 1e9).astype(np.int64)
    policy = _align(_commands(raw[POLICY], POLICY, warnings, bag), t, None)
    stamps, flags = [], []
    for msg in _deserialized(raw[DIVERGENCE], DIVERGENCE_TYPE, DIVERGENCE, warnings):
        stamps.append(_stamp_ns(msg.header))
        flags.append((float(msg.is_event),))
    event = _align(_source(stamps, flags, 1), t, None)[:, 0] > 0.5
    statuses = _statuses(raw.get(EPISODE, []), EPISODE, warnings)
    judge = np.full(len(t), np.nan)
    if statuses:
        st = np.asarray([_stamp_ns(s.header) for s in statuses])
        idx = np.searchsorted(st, t, side="right") - 1
        scores = np.asarray([s.score for s in statuses])
        judge[idx >= 0] = scores[idx[idx >= 0]]
    return Stream(a.name, a, policy, event, judge, a.seed, context)


def read_clip_dir(clips: Path, log: Callable[[str], None] = print) -> tuple[list[dict], dict[str, Path]]:
    """(the index lines, clip name -> bag directory) of a shadow node's output; ShadowDataError for a
    missing index, an unreadable line, or a line whose bag is absent, truncated or failed."""
    index = Path(clips) / "index.jsonl"
    if not index.is_file():
        raise ShadowDataError(f"{index}: no clip index (a shadow node's output_dir holds index.jsonl)")
    lines, bags = [], {}
    for n, text in enumerate(index.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            name = line["clip"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ShadowDataError(f"{index}:{n}: not a clip index line ({exc})") from exc
        bag = Path(clips) / name
        if line.get("error"):
            raise ShadowDataError(f"{index}:{n}: clip {name} was not written ({line['error']})")
        if line.get("truncated"):
            raise ShadowDataError(f"{bag}: truncated clip (index line {n}: the node's buffer had dropped part "
                                  "of its window); remove the line or the clip to train on the rest")
        if not bag.is_dir() or not any(bag.glob("*.mcap")) and not any(bag.glob("*.db3")):
            raise ShadowDataError(f"{bag}: named by {index}:{n} but no such bag")
        lines.append(line)
        bags[name] = bag
    if not lines:
        raise ShadowDataError(f"{index}: no clips listed")
    log(f"[photon] {index}: {len(lines)} clip(s)")
    return lines, bags


def drive_contexts(drives: Path) -> dict[str, str]:
    """Bag name -> driver variant, from a fleet's fleet.jsonl beside drives/ (empty without one)."""
    fleet = Path(drives).parent / "fleet.jsonl"
    if not fleet.is_file():
        return {}
    out = {}
    for text in fleet.read_text().splitlines():
        if text.strip():
            line = json.loads(text)
            out[Path(line["bag"]).name] = line.get("driver", "")
    return out


def drive_bags(drives: Path) -> list[Path]:
    """Every bag under a drives directory; ShadowDataError naming it when it holds none."""
    try:
        bags = list_bags(drives)
    except BagError as exc:
        raise ShadowDataError(str(exc)) from exc
    if not bags:
        raise ShadowDataError(f"{drives}: no bags under it")
    return bags
