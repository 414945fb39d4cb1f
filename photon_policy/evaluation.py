"""Evaluate a driver through the full ROS loop: the profile's nodes in lockstep (photon_policy.lockstep),
or with the simulator at its wall-clock rate (`realtime`, as on a car); scores from sim/episode, the
timeliness of the driver's commands from sim/episode_timing (photon_policy.sim.timing)."""
from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import rclpy
from rclpy.node import Node
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.qos import QoSProfile, ReliabilityPolicy

from photon_msgs.msg import EpisodeStatus
from photon_policy.launcher import ProfileProcesses
from photon_policy.lockstep import LockstepRun, RunError
from photon_policy.profiles import Profile, load_profile

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
    worker_runs: list[WorkerRun] = field(default_factory=list)
    """The simulator/driver pairs that ran side by side (`workers`), with their seeds and wall times."""
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
                "timing": self.timing(), "workers": max(len(self.worker_runs), 1),
                "worker_runs": [asdict(w) for w in self.worker_runs],
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
        if len(self.worker_runs) > 1:
            text += (f", {len(self.worker_runs)} workers side by side (wall "
                     f"{', '.join(f'{w.wall_time_s:.1f}' for w in self.worker_runs)} s)")
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

    def __init__(self, context: rclpy.Context | None = None, name: str = "photon_eval_monitor") -> None:
        super().__init__(name, context=context)
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
        if msg.step > 0:  # the first frame driven: the driver's start-up is not driving time
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


HIGHEST_DOMAIN_ID = 101
"""Linux: DDS ports of higher ROS_DOMAIN_IDs fall into the kernel's ephemeral range, where they can collide."""


@dataclass(frozen=True)
class WorkerRun:
    """One simulator/policy pair of a `workers` eval: its DDS domain, seeds and speed."""
    worker: int
    domain_id: int | None
    """None: the caller's ROS_DOMAIN_ID (a one-worker eval)."""
    seeds: list[int]
    steps: int
    wall_time_s: float
    steps_per_second: float


def split_seeds(seeds: list[int], workers: int) -> list[list[int]]:
    """Positions in `seeds` for each worker, dealt round-robin (0, N, 2N, ... to the first): a
    simulator takes its whole seed list at start-up, so there is no shared queue to draw from, and
    dealing spreads short and long episodes alike. Never more workers than seeds."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    n = min(workers, len(seeds))
    return [list(range(i, len(seeds), n)) for i in range(n)]


def worker_domains(workers: int, base: int | None = None) -> list[int]:
    """ROS_DOMAIN_IDs base, base+1, ..., one per worker; base: this process's ROS_DOMAIN_ID (0 if unset).
    Worker 0 shares the caller's domain, so one worker is exactly a plain eval; two evals side by side
    need their ROS_DOMAIN_IDs at least `workers` apart."""
    if base is None:
        text = os.environ.get("ROS_DOMAIN_ID", "").strip() or "0"
        if not text.isdigit():
            raise ValueError(f"ROS_DOMAIN_ID='{text}' is not a domain id (0-{HIGHEST_DOMAIN_ID})")
        base = int(text)
    last = base + workers - 1
    if last > HIGHEST_DOMAIN_ID:
        raise ValueError(f"{workers} workers need ROS_DOMAIN_ID {base} to {last}, above {HIGHEST_DOMAIN_ID} "
                         f"(higher ids collide with the ephemeral ports): set ROS_DOMAIN_ID to at most "
                         f"{HIGHEST_DOMAIN_ID - workers + 1}, or use fewer workers")
    return list(range(base, last + 1))


def auto_workers(n_seeds: int, cpus: int | None = None) -> int:
    """`--workers auto`: one simulator/policy pair per core this process may use, never more than the
    seeds. A lockstep pair keeps about one core busy (~25 ms of CPU per step at ~38 steps/s): on 2
    cores 2 pairs drove 1.83x as fast as one, 4 pairs only 1.57x (docs/EVAL_SPEED.md)."""
    cpus = cpus or len(os.sched_getaffinity(0))
    return max(1, min(n_seeds, cpus))


class WorkerStopped(Exception):
    """Raised in a worker's loop when the eval is being stopped (another worker failed, or a signal)."""


class _Worker:
    """One simulator/policy pair in its own DDS domain, driving its seeds as a plain eval does."""

    def __init__(self, index: int, domain_id: int | None, positions: list[int], seeds: list[int],
                 log_dir: Path | None) -> None:
        self.index, self.domain_id, self.positions = index, domain_id, positions
        self.seeds = [seeds[p] for p in positions]
        self.log_dir = log_dir
        self.monitor: EpisodeMonitor | None = None
        self.error: BaseException | None = None
        self.failed_at = math.inf

    def drive(self, profile: Profile, overrides: dict[str, dict[str, Any]], stall_timeout_s: float,
              check: Callable[["_Worker"], None]) -> None:
        overrides = {**overrides, "simulator": {**overrides["simulator"], "seeds": ",".join(map(str, self.seeds))}}
        # One name per pair: rclpy logs through one /rosout publisher per node name in a process.
        name = "photon_eval_monitor" + (f"_{self.index}" if self.index else "")
        run = LockstepRun(lambda context: EpisodeMonitor(context, name), self.log_dir, prefix="photon-eval-",
                          domain_id=self.domain_id)
        processes = ProfileProcesses(profile, overrides, log_dir=run.log_dir, domain_id=self.domain_id)
        with run:
            monitor: EpisodeMonitor = run.monitor
            self.monitor = monitor
            # A volatile writer never sends what it published before it matched a reader, and a
            # short episode can end before the monitor matches: the driver starts once the monitor
            # hears the simulator, which repeats its first frame until it is driven.
            run.start(processes, names=["simulator"])
            run.spin_until(lambda: monitor.last_status_at is not None, stall_timeout_s,
                           "the simulator's first episode status", lambda: check(self))
            run.start(processes)
            stalled = run.stall_check(lambda: monitor.last_status_at, stall_timeout_s)

            def checks() -> None:
                stalled()
                check(self)
            run.spin_until(lambda: len(monitor.finished) >= len(self.seeds), 7 * 24 * 3600.0, "the episodes", checks)
            # The simulator publishes each episode's timing as it ends; the last may trail its status.
            run.spin_until(lambda: len(monitor.timings) >= len(self.seeds), 10.0, "the episodes' timing",
                           lambda: check(self), detail=lambda: f" (have {sorted(monitor.timings)})")

    def run_in_thread(self, *args: Any) -> None:
        try:
            self.drive(*args)
        except BaseException as exc:  # reported by the parent thread, which stops the other workers
            self.error, self.failed_at = exc, time.monotonic()

    def report(self) -> WorkerRun:
        m = self.monitor
        span = max((m.last_done_at or 0.0) - (m.first_status_at or 0.0), 1e-9)
        steps = sum(e.steps for e in m.finished.values())
        return WorkerRun(self.index, self.domain_id, self.seeds, steps, round(span, 3), steps / span)

    def describe(self) -> str:
        return f"worker {self.index} (ROS_DOMAIN_ID {self.domain_id}, seeds {','.join(map(str, self.seeds))})"


def evaluate(driver: str, seeds: list[int], max_steps: int = 1000,
             overrides: dict[str, dict[str, Any]] | None = None, log_dir: Path | None = None,
             stall_timeout_s: float = 60.0, progress: bool = True, checkpoint: str | Path | None = None,
             realtime: bool = False, workers: int = 1) -> EvalReport:
    """Run `seeds` through the driver's profile and collect the scores: in lockstep, or with
    `realtime` at the simulator's wall-clock rate (its first frame waits for the driver's first
    command). `checkpoint`: the policy driver's checkpoint (default: the node's, the shipped policy).
    `workers` > 1: that many simulator/driver pairs side by side, each in its own DDS domain
    (worker_domains), the seeds dealt between them (split_seeds); the report lists the episodes in
    the order of `seeds`. Each episode starts 1 s of sim time after the one before it
    (photon_policy.sim.session.EPISODE_GAP_TICKS), so no driver carries one episode's context into the
    next, and a seed scores the same whichever pair drives it, after whichever seed."""
    if driver not in DRIVER_PROFILES:
        raise ValueError(f"unknown driver '{driver}'; choose from {sorted(DRIVER_PROFILES)}")
    profile = load_profile(DRIVER_PROFILES[driver])
    node_overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    if checkpoint is not None:
        if driver != "policy":
            raise ValueError(f"a checkpoint is for the policy driver; the {driver} driver has none")
        node_overrides.setdefault("policy", {})["checkpoint"] = str(checkpoint)
    node_overrides.setdefault("simulator", {}).update(
        mode="realtime" if realtime else "lockstep", wait_for_driver=realtime, repeat=False, max_steps=max_steps)
    plan = split_seeds(seeds, workers)
    if len(plan) == 1:  # a plain eval: the caller's domain and log directory, in this thread
        pairs = [_Worker(0, None, plan[0], seeds, log_dir)]
    else:
        root = log_dir or Path(tempfile.mkdtemp(prefix="photon-eval-"))
        pairs = [_Worker(i, domain, positions, seeds, root / f"worker-{i}")
                 for i, (domain, positions) in enumerate(zip(worker_domains(len(plan)), plan))]
    bar = _progress_bar(len(seeds) * max_steps, driver) if progress else None

    def show_progress() -> None:
        if bar is not None:
            monitors = [w.monitor for w in pairs if w.monitor is not None]
            bar.update(sum(m.steps_done(max_steps) for m in monitors) - bar.n)
            bar.set_postfix_str(f"{sum(len(m.finished) for m in monitors)}/{len(seeds)} episodes", refresh=False)
    try:
        if len(pairs) == 1:
            pairs[0].drive(profile, node_overrides, stall_timeout_s, lambda _: show_progress())
        else:
            _drive_side_by_side(pairs, (profile, node_overrides, stall_timeout_s), show_progress)
    finally:
        if bar is not None:
            bar.close()

    by_position = {p: e for w in pairs for p, e in zip(w.positions, w.monitor.scores())}
    episodes = [by_position[p] for p in range(len(seeds))]
    runs = [w.report() for w in pairs]
    span = max(max(w.monitor.last_done_at or 0.0 for w in pairs) - min(w.monitor.first_status_at or 0.0 for w in pairs),
               1e-9)
    return EvalReport(driver=driver, profile=profile.name, episodes=episodes,
                      wall_time_s=span, steps_per_second=sum(e.steps for e in episodes) / span,
                      mode="realtime" if realtime else "lockstep", worker_runs=runs)


def _drive_side_by_side(pairs: list[_Worker], drive_args: tuple, show_progress: Callable[[], None]) -> None:
    """Each pair's loop in a thread of its own (its rclpy context, executor and node processes);
    this thread watches them. The first failure, or a signal here (KeyboardInterrupt, also SIGTERM
    through photon's CLI), stops every pair: each leaves its loop and stops its nodes, and a failure
    is raised with the failed pair's seeds and node log."""
    stopping = threading.Event()

    def check(_: _Worker) -> None:
        if stopping.is_set():
            raise WorkerStopped
    threads = [threading.Thread(target=w.run_in_thread, args=(*drive_args, check), name=f"photon-eval-worker-{w.index}")
               for w in pairs]

    def first_failure() -> _Worker | None:
        failures = [w for w in pairs if w.error is not None and not isinstance(w.error, WorkerStopped)]
        return min(failures, key=lambda w: w.failed_at) if failures else None
    try:
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads) and first_failure() is None:
            time.sleep(0.2)
            show_progress()
    finally:
        stopping.set()
        for thread in threads:
            thread.join()
    failed = first_failure()
    if failed is not None:
        if isinstance(failed.error, RunError):
            raise RunError(f"{failed.describe()} failed; the other workers were stopped: {failed.error}") \
                from failed.error
        raise failed.error


def _progress_bar(total_steps: int, driver: str):
    """Counts simulator steps (an episode is up to max_steps of them), so the bar moves every second."""
    from tqdm import tqdm
    return tqdm(total=total_steps, desc=f"eval {driver}", unit="step", unit_scale=True, mininterval=0.5)
