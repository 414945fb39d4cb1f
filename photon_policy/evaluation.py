"""Evaluate a driver through the full ROS loop: the profile's nodes in lockstep (photon_policy.lockstep),
or with the simulator at its wall-clock rate (`realtime`, as on a car); scores from sim/episode, the
timeliness of the driver's commands from sim/episode_timing (photon_policy.sim.timing)."""
from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.qos import QoSProfile, ReliabilityPolicy

from photon_msgs.msg import EpisodeStatus
from photon_policy.launcher import ProfileProcesses
from photon_policy.lockstep import LockstepRun
from photon_policy.profiles import load_profile

DRIVER_PROFILES = {"expert": "sim", "policy": "sim-policy"}


@dataclass(frozen=True)
class EpisodeScore:
    seed: int
    score: float
    steps: int
    reason: str
    timing: dict[str, Any] | None = None
    """Late, stale and dropped frames and the command age at each step (photon_policy.sim.timing)."""


@dataclass
class EvalReport:
    driver: str
    profile: str
    episodes: list[EpisodeScore]
    wall_time_s: float
    steps_per_second: float
    mode: str = "lockstep"
    mean: float = field(init=False)
    std: float = field(init=False)
    min: float = field(init=False)
    max: float = field(init=False)

    def __post_init__(self) -> None:
        scores = [e.score for e in self.episodes] or [math.nan]
        self.mean = statistics.fmean(scores)
        self.std = statistics.pstdev(scores) if len(scores) > 1 else 0.0
        self.min, self.max = min(scores), max(scores)

    def to_dict(self) -> dict[str, Any]:
        return {"driver": self.driver, "profile": self.profile, "mode": self.mode, "n_episodes": len(self.episodes),
                "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
                "steps_per_second": self.steps_per_second, "wall_time_s": self.wall_time_s,
                "timing": self.timing(),
                "episodes": [asdict(e) for e in self.episodes]}

    def timing(self) -> dict[str, Any]:
        """Over every episode: steps, late/stale steps and dropped frames, command age p50/p99/max."""
        timings = [e.timing for e in self.episodes if e.timing is not None]
        ages = [a for t in timings for a in t["command_age_ms"]]
        totals = {k: sum(t[k] for t in timings) for k in ("steps", "late_steps", "stale_steps", "dropped_frames")}
        return {**totals, **{f"command_age_ms_{name}": (round(float(f(ages)), 2) if ages else math.nan)
                             for name, f in (("p50", statistics.median), ("max", max),
                                             ("p99", lambda a: statistics.quantiles(a, n=100)[-1] if len(a) > 1
                                              else a[0]))}}

    def summary(self) -> str:
        text = (f"{self.driver}: mean {self.mean:.1f} ± {self.std:.1f} (min {self.min:.1f}, max {self.max:.1f}) "
                f"over {len(self.episodes)} episodes, {self.steps_per_second:.1f} steps/s through the ROS loop "
                f"({self.mode})")
        if self.mode == "realtime":
            t = self.timing()
            text += (f"; of {t['steps']} steps {t['late_steps']} late, {t['stale_steps']} stale (braking), "
                     f"{t['dropped_frames']} frames dropped; command age p50 {t['command_age_ms_p50']} ms, "
                     f"p99 {t['command_age_ms_p99']} ms, max {t['command_age_ms_max']} ms")
        return text

    def write(self, path: Path, plot: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        if plot:
            plot_scores(self, path.with_suffix(".png"))


def plot_scores(report: EvalReport, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = [e.seed for e in report.episodes]
    scores = [e.score for e in report.episodes]
    fig, ax = plt.subplots(figsize=(max(6.0, len(seeds) * 0.08), 3.5))
    ax.bar(range(len(seeds)), scores, color=["tab:blue" if s >= 900 else "tab:orange" for s in scores])
    ax.axhline(900, color="k", lw=0.8, ls="--", label="solved (900)")
    ax.axhline(report.mean, color="tab:green", lw=1.2, label=f"mean {report.mean:.1f}")
    ax.set_xlabel("seed")
    step = max(1, len(seeds) // 20)
    ax.set_xticks(range(0, len(seeds), step), [str(s) for s in seeds[::step]])
    ax.set_ylabel("CarRacing-v3 score")
    ax.set_title(f"{report.driver} through the ROS loop: {report.mean:.1f} ± {report.std:.1f}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class EpisodeMonitor(Node):
    """Collects finished episodes from sim/episode, and their timing from sim/episode_timing."""

    def __init__(self, context: rclpy.Context | None = None) -> None:
        super().__init__("photon_eval_monitor", context=context)
        self.finished: dict[int, EpisodeScore] = {}
        self.first_status_at: float | None = None
        self.last_status_at: float | None = None
        self.last_done_at: float | None = None
        self.current_episode, self.current_step = -1, 0
        self.timings: dict[int, dict[str, Any]] = {}
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(EpisodeStatus, "sim/episode", self._on_status, reliable)
        self.create_subscription(DiagnosticStatus, "sim/episode_timing", self._on_timing, reliable)

    def steps_done(self, max_steps: int) -> int:
        """Steps of finished episodes, counted as max_steps each, plus the running one's: a progress count."""
        return len(self.finished) * max_steps + (self.current_step if self.current_episode not in self.finished else 0)

    def _on_status(self, msg: EpisodeStatus) -> None:
        now = time.monotonic()
        self.first_status_at = self.first_status_at or now
        self.last_status_at = now
        self.current_episode, self.current_step = int(msg.episode), int(msg.step)
        if msg.done and msg.reason != "shutdown" and msg.episode not in self.finished:
            self.finished[msg.episode] = EpisodeScore(int(msg.seed), float(msg.score), int(msg.step), msg.reason)
            self.last_done_at = now


    def _on_timing(self, msg: DiagnosticStatus) -> None:
        timing = parse_timing(msg)
        self.timings[timing["episode"]] = timing

    def scores(self) -> list[EpisodeScore]:
        return [replace(self.finished[i], timing=self.timings.get(i)) for i in sorted(self.finished)]


def parse_timing(msg: DiagnosticStatus) -> dict[str, Any]:
    """sim/episode_timing's key-values -> numbers; `command_age_ms`, a list (one age per step)."""
    values = {kv.key: kv.value for kv in msg.values}
    ages = values.pop("command_age_ms")
    values.pop("mode")
    timing: dict[str, Any] = {k: (int(v) if v.lstrip("-").isdigit() else float(v)) for k, v in values.items()}
    timing["command_age_ms"] = [float(a) for a in ages.split(",")] if ages else []
    return timing


def evaluate(driver: str, seeds: list[int], max_steps: int = 1000,
             overrides: dict[str, dict[str, Any]] | None = None, log_dir: Path | None = None,
             stall_timeout_s: float = 60.0, progress: bool = True, checkpoint: str | Path | None = None,
             realtime: bool = False) -> EvalReport:
    """Run `seeds` through the driver's profile and collect the scores: in lockstep, or with
    `realtime` at the simulator's wall-clock rate (its first frame waits for the driver's first
    command). `checkpoint`: the policy driver's checkpoint (default: the node's, the shipped policy)."""
    if driver not in DRIVER_PROFILES:
        raise ValueError(f"unknown driver '{driver}'; choose from {sorted(DRIVER_PROFILES)}")
    profile = load_profile(DRIVER_PROFILES[driver])
    node_overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    if checkpoint is not None:
        if driver != "policy":
            raise ValueError(f"a checkpoint is for the policy driver; the {driver} driver has none")
        node_overrides.setdefault("policy", {})["checkpoint"] = str(checkpoint)
    node_overrides.setdefault("simulator", {}).update(
        mode="realtime" if realtime else "lockstep", wait_for_driver=realtime, seeds=",".join(map(str, seeds)),
        repeat=False, max_steps=max_steps)
    run = LockstepRun(EpisodeMonitor, log_dir, prefix="photon-eval-")
    processes = ProfileProcesses(profile, node_overrides, log_dir=run.log_dir)
    bar = _progress_bar(len(seeds) * max_steps, driver) if progress else None
    try:
        with run:
            monitor: EpisodeMonitor = run.monitor
            run.start(processes)
            stalled = run.stall_check(lambda: monitor.last_status_at, stall_timeout_s)

            def check() -> None:
                stalled()
                if bar is not None:
                    bar.update(monitor.steps_done(max_steps) - bar.n)
            run.spin_until(lambda: len(monitor.finished) >= len(seeds), 7 * 24 * 3600.0, "the episodes", check)
            # The simulator publishes each episode's timing as it ends; the last may trail its status.
            run.spin_until(lambda: len(monitor.timings) >= len(seeds), 10.0, "the episodes' timing",
                           detail=lambda: f" (have {sorted(monitor.timings)})")
    finally:
        if bar is not None:
            bar.close()

    episodes = monitor.scores()
    total_steps = sum(e.steps for e in episodes)
    span = max((monitor.last_done_at or 0.0) - (monitor.first_status_at or 0.0), 1e-9)
    return EvalReport(driver=driver, profile=profile.name, episodes=episodes,
                      wall_time_s=span, steps_per_second=total_steps / span,
                      mode="realtime" if realtime else "lockstep")


def _progress_bar(total_steps: int, driver: str):
    """Counts simulator steps (an episode is up to max_steps of them), so the bar moves every second."""
    from tqdm import tqdm
    return tqdm(total=total_steps, desc=f"eval {driver}", unit="step", unit_scale=True, mininterval=0.5)
