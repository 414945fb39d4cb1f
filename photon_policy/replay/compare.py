"""References vs replayed outputs: exact message counts and order per topic, every field within
its tolerance (fields.RULES), and a diff a reviewer can read. ROS-free."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from photon_policy.replay.fields import tolerance_for

Outputs = dict[str, dict[str, Any]]
"""topic -> {"type": message type, "messages": [flat record, ...]} in the order they arrived."""
SHOWN_PER_TOPIC = 20


@dataclass(frozen=True)
class Difference:
    topic: str
    index: int | None      # message index on the topic; None for a whole-topic difference
    field: str
    expected: Any
    got: Any
    tolerance: float | None = None
    stamp: str = ""

    def __str__(self) -> str:
        where = self.topic if self.index is None else f"{self.topic}[{self.index}]"
        if self.stamp:
            where += f" (stamp {self.stamp})"
        text = f"{where} {self.field}: expected {_show(self.expected)}, got {_show(self.got)}"
        if self.tolerance:
            text += f" (|diff| {abs(self.got - self.expected):.3g} > tolerance {self.tolerance:g})"
        return text


def _show(value: Any) -> str:
    return f"{value:.9g}" if isinstance(value, float) else repr(value)


def stamp_of(record: dict[str, Any]) -> str:
    sec, nanosec = record.get("header.stamp.sec"), record.get("header.stamp.nanosec")
    return "" if sec is None or nanosec is None else f"{sec}.{nanosec:09d}"


def compare(expected: Outputs, got: Outputs) -> list[Difference]:
    """Every difference between the reference outputs and the replayed ones."""
    diffs: list[Difference] = []
    for topic in sorted(set(expected) | set(got)):
        if topic not in got:
            diffs.append(Difference(topic, None, "messages", len(expected[topic]["messages"]), "topic absent"))
            continue
        if topic not in expected:
            diffs.append(Difference(topic, None, "messages", "topic absent", len(got[topic]["messages"])))
            continue
        type_name = expected[topic]["type"]
        if got[topic]["type"] != type_name:
            diffs.append(Difference(topic, None, "type", type_name, got[topic]["type"]))
            continue
        want, have = expected[topic]["messages"], got[topic]["messages"]
        if len(want) != len(have):
            diffs.append(Difference(topic, None, "message count", len(want), len(have)))
        for index, (a, b) in enumerate(zip(want, have)):
            diffs.extend(compare_records(topic, type_name, index, a, b))
    return diffs


def compare_records(topic: str, type_name: str, index: int, want: dict[str, Any],
                    have: dict[str, Any]) -> list[Difference]:
    diffs = []
    stamp = stamp_of(want)
    for field in sorted(set(want) | set(have)):
        tolerance = tolerance_for(type_name, field)
        if tolerance is None:
            continue
        if field not in have or field not in want:
            diffs.append(Difference(topic, index, field, want.get(field, "absent"), have.get(field, "absent"),
                                    stamp=stamp))
            continue
        a, b = want[field], have[field]
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                diffs.append(Difference(topic, index, f"len({field})", len(a), len(b), stamp=stamp))
                continue
            diffs.extend(Difference(topic, index, f"{field}[{i}]", x, y, tolerance, stamp)
                         for i, (x, y) in enumerate(zip(a, b)) if not within(x, y, tolerance))
        elif not within(a, b, tolerance):
            diffs.append(Difference(topic, index, field, a, b, tolerance, stamp))
    return diffs


def within(a: Any, b: Any, tolerance: float) -> bool:
    """Equal, or numbers no further apart than `tolerance` (NaN equals only NaN)."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= tolerance
    return a == b


def diff_report(diffs: list[Difference], title: str) -> str:
    """The differences grouped by topic, at most SHOWN_PER_TOPIC each (the count of the rest)."""
    if not diffs:
        return f"{title}: outputs match the reference\n"
    lines = [f"{title}: {len(diffs)} difference(s)"]
    by_topic: dict[str, list[Difference]] = {}
    for d in diffs:
        by_topic.setdefault(d.topic, []).append(d)
    for topic, items in by_topic.items():
        lines += [f"  {d}" for d in items[:SHOWN_PER_TOPIC]]
        if len(items) > SHOWN_PER_TOPIC:
            lines.append(f"  ... {len(items) - SHOWN_PER_TOPIC} more on {topic}")
    return "\n".join(lines) + "\n"
