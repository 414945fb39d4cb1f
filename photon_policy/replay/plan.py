"""What a suite's bag feeds, in order: each camera frame with the messages stamped up to it. ROS-free.

A damaged bag is read up to the damage (photon_policy.bags.reader.read_raw) and what was lost is
listed; topics of a type this installation cannot publish, and topics no replayed node reads, are
skipped and listed. Only a bag without a single frame is an error.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from photon_policy.bags.reader import BagError, read_raw
from photon_policy.bags.recorder_node import message_class
from photon_policy.replay.suites import Suite
from photon_policy.shadow import cdr

TF_TYPES = ("tf2_msgs/msg/TFMessage",)  # a sequence of stamped transforms: the first one's stamp


@dataclass
class Step:
    stamp_ns: int
    frame: bytes
    before: list[tuple[str, bytes]]  # (published topic, CDR) stamped after the previous frame, up to this one


@dataclass
class FeedPlan:
    steps: list[Step]
    types: dict[str, str]                               # published topic -> message type
    skipped: list[str] = field(default_factory=list)    # what was not fed, and why
    warnings: list[str] = field(default_factory=list)   # what the reader could not read

    @property
    def stamps_s(self) -> list[float]:
        return [s.stamp_ns * 1e-9 for s in self.steps]

    def fed(self, topic: str, k: int) -> list[int]:
        """Stamps (ns) of the messages fed on `topic` before frame k."""
        return [cdr.stamp_ns(data) for t, data in self.steps[k].before if t == topic]


def bag_topics(bag: Path) -> dict[str, str]:
    """topic -> type from the bag's metadata.yaml ({} when it has none: a recording never closed)."""
    path = bag / "metadata.yaml"
    if not path.is_file():
        return {}
    info = (yaml.safe_load(path.read_text()) or {}).get("rosbag2_bagfile_information", {})
    return {t["topic_metadata"]["name"]: t["topic_metadata"]["type"] for t in info.get("topics_with_message_count", [])}


def publishable(type_name: str) -> bool:
    try:
        message_class(type_name)
        return True
    except (ImportError, AttributeError, ValueError):
        return False


def load_plan(suite: Suite) -> FeedPlan:
    wanted = {suite.frames, *suite.feed}
    raw, types, warnings = read_raw(suite.bag, wanted)
    unread = sorted(topic for topic in bag_topics(suite.bag) if topic not in wanted)
    skipped = [f"not read by the replayed nodes: {', '.join(unread)}"] if unread else []
    for topic in sorted(wanted - set(raw)):
        skipped.append(f"{topic}: not in the bag")
    usable = {}
    for topic in sorted(raw):
        if not publishable(types[topic]):
            skipped.append(f"{topic}: unknown message type {types[topic]} ({len(raw[topic])} messages)")
        else:
            usable[topic] = raw[topic]
    if not usable.get(suite.frames):
        raise BagError(f"{suite.bag}: no frames on {suite.frames} to replay"
                       + (f" ({'; '.join(warnings)})" if warnings else ""))
    frames: dict[int, bytes] = {}
    for _, data in usable.pop(suite.frames):
        frames.setdefault(cdr.stamp_ns(data), bytes(data))  # a lockstep resend is fed once
    stamps = sorted(frames)
    extra: list[list[tuple[int, int, str, bytes]]] = [[] for _ in stamps]
    late = 0
    order = list(suite.feed)  # equal stamps: in the order suites.yaml lists the topics
    for topic, messages in usable.items():
        for _, data in messages:
            stamp = cdr.stamp_ns(data, types[topic] in TF_TYPES)
            k = bisect.bisect_left(stamps, stamp) if stamp is not None else len(stamps)
            if k == len(stamps):
                late += 1  # after the last frame: nothing would answer it
                continue
            extra[k].append((stamp, order.index(topic), suite.feed[topic], bytes(data)))
    if late:
        skipped.append(f"{late} messages stamped after the last frame")
    steps = [Step(t, frames[t], [(topic, data) for _, _, topic, data in sorted(before, key=lambda m: m[:2])])
             for t, before in zip(stamps, extra)]
    out_types = {suite.frames: types[suite.frames], **{suite.feed[t]: types[t] for t in usable}}
    return FeedPlan(steps, out_types, skipped, warnings)
