"""`photon shadow report DIR`: how often and how badly the policy disagreed with the driver.

DIR is a shadow node's output_dir (index.jsonl, drives.jsonl, clip bags) or a fleet's --out
(the same under clips/, plus events.jsonl with who was heading off the road). Writes, under
DIR/report/: report.json, histogram.png (peak score and duration of events), timeline.png
(every drive, its events along it) and top_NN.png (the top events by peak score, each a strip
of camera frames across the event, read from its clip).

Rates: events per minute of paired driving (drives.jsonl `paired_s`) and per km (odometry).
A run whose node was killed (SIGKILL, power loss) has events but no drives line: its minutes
are not counted, and the report says how many such runs there were.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from photon_policy.bags.reader import read_raw
from photon_policy.bags.typestore import photon_typestore
from photon_policy.ros.images import decode_numpy
from photon_policy.shadow.clips import DRIVES, INDEX

THUMBNAILS = 8
CAMERA = "/camera/image_raw"


@dataclass
class Summary:
    events: int
    minutes: float
    km: float
    drives: int
    runs_without_drive_line: int
    faults: dict[str, int] = field(default_factory=dict)
    by_context: dict[str, dict[str, float]] = field(default_factory=dict)
    top: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    pairing_rate: float = math.nan
    clip_errors: int = 0

    @property
    def per_minute(self) -> float:
        return self.events / self.minutes if self.minutes > 0 else math.nan

    @property
    def per_km(self) -> float:
        return self.events / self.km if self.km > 0 else math.nan

    @property
    def policy_share(self) -> float:
        """Share of attributed events where only the policy was heading off the road."""
        known = sum(v for k, v in self.faults.items() if k != "unknown")
        return self.faults.get("policy", 0) / known if known else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.events, "minutes": self.minutes, "km": self.km, "drives": self.drives,
                "events_per_minute": self.per_minute, "events_per_km": self.per_km,
                "runs_without_drive_line": self.runs_without_drive_line, "faults": self.faults,
                "policy_at_fault_share": self.policy_share, "by_context": self.by_context,
                "pairing_rate": self.pairing_rate, "clip_errors": self.clip_errors,
                "top": self.top, "files": self.files}

    def text(self) -> str:
        lines = [f"[photon] {self.events} events in {self.minutes:.1f} min ({self.km:.1f} km) of {self.drives} "
                 f"drive(s): {self.per_minute:.2f} per minute, {self.per_km:.2f} per km; pairing "
                 f"{self.pairing_rate:.2%}"]
        if self.faults:
            lines.append(f"[photon] heading off the road (simulator replay): {dict(self.faults)}; the policy alone "
                         f"in {self.policy_share:.1%} of attributed events")
        for context, row in sorted(self.by_context.items()):
            lines.append(f"  {context or '(no context)':14s} {row['events']:4.0f} events  "
                         f"{row['events_per_minute']:.2f}/min  policy at fault {row['policy_share']:.1%}")
        if self.runs_without_drive_line:
            lines.append(f"[photon] {self.runs_without_drive_line} run(s) have events but no drives line "
                         "(killed): their minutes are not counted")
        lines += [f"[photon] wrote {f}" for f in self.files]
        return "\n".join(lines)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(s) for s in path.read_text().splitlines() if s.strip()] if path.is_file() else []


def load(root: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Path]:
    """(events, drives, clip directory) of a node's output_dir or a fleet's --out."""
    clips = root / "clips" if (root / "clips" / INDEX).is_file() or (root / "clips" / DRIVES).is_file() else root
    if not (clips / INDEX).is_file() and not (clips / DRIVES).is_file():
        raise FileNotFoundError(f"{root}: no {INDEX} or {DRIVES} here or in {root / 'clips'}")
    drives = _jsonl(clips / DRIVES)
    if (root / "fleet.jsonl").is_file():  # a fleet: only the episodes it finished (not failed attempts)
        finished = {line.get("run") for line in _jsonl(root / "fleet.jsonl")}
        return _jsonl(root / "events.jsonl"), [d for d in drives if d["run"] in finished], clips
    return _jsonl(clips / INDEX), drives, clips


def summarise(events: list[dict[str, Any]], drives: list[dict[str, Any]]) -> Summary:
    runs = {d["run"] for d in drives}
    faults = Counter(e["fault"] for e in events if "fault" in e)
    pairs = sum(d["pairs"] for d in drives)
    commands = sum(d["policy_commands"] for d in drives)
    summary = Summary(events=len(events), minutes=sum(d["paired_s"] for d in drives) / 60.0,
                      km=sum(d["distance_m"] for d in drives) / 1000.0, drives=len(drives),
                      runs_without_drive_line=len({e["run"] for e in events} - runs), faults=dict(faults),
                      pairing_rate=pairs / commands if commands else math.nan,
                      clip_errors=sum(1 for e in events if e.get("error")))
    for context in sorted({d.get("context", "") for d in drives}):
        mine = [e for e in events if e.get("context", "") == context]
        minutes = sum(d["paired_s"] for d in drives if d.get("context", "") == context) / 60.0
        known = [e for e in mine if e.get("fault", "unknown") != "unknown"]
        summary.by_context[context] = {
            "events": len(mine), "minutes": minutes, "events_per_minute": len(mine) / minutes if minutes else math.nan,
            "policy_share": sum(e["fault"] == "policy" for e in known) / len(known) if known else math.nan,
            "driver_share": sum(e["fault"] == "driver" for e in known) / len(known) if known else math.nan}
    return summary


def clip_frames(bag: Path, start: float, end: float, n: int = THUMBNAILS) -> list[tuple[float, np.ndarray]]:
    """n camera frames of a clip, evenly spread from `start` to `end` (stamps, s)."""
    raw, _, _ = read_raw(bag, {CAMERA})
    store = photon_typestore()
    msgs = [store.deserialize_cdr(d, "sensor_msgs/msg/Image") for _, d in raw.get(CAMERA, [])]
    stamped = sorted(((m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, m) for m in msgs), key=lambda x: x[0])
    if not stamped:
        return []
    times = np.array([t for t, _ in stamped])
    picks = sorted({int(np.argmin(np.abs(times - t))) for t in np.linspace(start, end, n)})
    out = []
    for i in picks:
        frame = decode_numpy(stamped[i][1])
        if frame is not None:
            out.append((stamped[i][0], frame))
    return out


def report(root: Path | str, top: int = 5, json_path: Path | None = None) -> Summary:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = Path(root)
    events, drives, clips = load(root)
    summary = summarise(events, drives)
    out = root / "report"
    out.mkdir(parents=True, exist_ok=True)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].hist([e["peak"] for e in events] or [0], bins=30, color="tab:red")
    axes[0].set(xlabel="peak divergence score", ylabel="events", title=f"{len(events)} events")
    axes[1].hist([e["duration"] for e in events] or [0], bins=30, color="tab:blue")
    axes[1].set(xlabel="event duration (s)", title=f"{summary.per_minute:.2f} events/min, {summary.per_km:.2f}/km")
    fig.tight_layout()
    fig.savefig(out / "histogram.png", dpi=100)
    plt.close(fig)

    colors = {"policy": "tab:red", "driver": "tab:blue", "both": "tab:purple", "neither": "tab:gray"}
    order = sorted({d["run"] for d in drives} | {e["run"] for e in events})
    first = {d["run"]: d.get("first_pair") or 0.0 for d in drives}
    fig, ax = plt.subplots(figsize=(10, max(2.5, 0.12 * len(order) + 1)))
    for y, run in enumerate(order):
        d = next((d for d in drives if d["run"] == run), None)
        t0 = first.get(run, 0.0)
        if d is not None and d.get("last_pair") is not None:
            ax.plot([0, d["last_pair"] - t0], [y, y], color="0.85", lw=1)
        for e in (e for e in events if e["run"] == run):
            ax.plot([e["start"] - t0, e["end"] - t0], [y, y], lw=4, solid_capstyle="butt",
                    color=colors.get(e.get("fault"), "tab:orange"))
    ax.set(xlabel="s since the drive's first pair", ylabel="drive", title="events along each drive "
           "(red: policy heading off the road, blue: driver, purple: both, grey: neither, orange: not attributed)")
    ax.title.set_fontsize(8)
    fig.tight_layout()
    fig.savefig(out / "timeline.png", dpi=100)
    plt.close(fig)
    summary.files += [str(out / "histogram.png"), str(out / "timeline.png")]

    for rank, e in enumerate(sorted(events, key=lambda e: -e["peak"])[:top], start=1):
        row = {k: e.get(k) for k in ("run", "id", "start", "end", "peak", "mean", "speed", "clip", "fault",
                                     "context", "score_change", "driver_score_change", "policy_score_change")}
        frames = clip_frames(clips / e["clip"], e["start"] - 0.5, e["end"] + 0.5) if e.get("clip") else []
        if frames:
            fig, axes = plt.subplots(1, len(frames), figsize=(1.6 * len(frames), 2.1))
            for ax, (t, frame) in zip(np.atleast_1d(axes), frames):
                ax.imshow(frame)
                ax.set_title(f"{t - e['start']:+.2f} s", fontsize=7)
                ax.axis("off")
            fig.suptitle(f"#{rank} {e['run']} event {e['id']}: peak {e['peak']:.2f}, {e['duration']:.2f} s, "
                         f"fault {e.get('fault', '?')}", fontsize=8)
            fig.tight_layout()
            path = out / f"top_{rank:02d}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            row["thumbnails"] = str(path)
            summary.files.append(str(path))
        summary.top.append(row)

    json_path = Path(json_path) if json_path else out / "report.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(summary.as_dict(), indent=2, default=float) + "\n")
    summary.files.append(str(json_path))
    return summary
