"""`photon shadow fleet`: many seeded lockstep episodes, the expert at the wheel, the policy in shadow.

Each seed runs the `sim-shadow` profile (simulator, expert, policy in shadow mode, shadow
node) with the recorder, through photon_policy.bags.collect.collect_episode. The expert
stands in for a human, and humans are imperfect, so the seeds cycle through driver
variants (DRIVERS): clean, drifting steering noise, full-lock pulses, late braking. That
way a disagreement is sometimes the driver's fault and sometimes the policy's.

Lockstep with a passenger: the simulator steps as soon as the driver's command for the
frame arrives, and nothing would wait for the policy, which would then skip frames and
answer a drive it never saw. So the simulator reads GATE_TOPIC, which a small node here
(PolicyGate) feeds with the driver's command for a frame once the policy has answered that
frame too (or after GATE_TIMEOUT_S, counted). The driver's command is forwarded unchanged.

Out: DIR/drives/<episode bag> (the full drive), DIR/clips/ (clip bags, index.jsonl,
drives.jsonl from the shadow node), DIR/fleet.jsonl (one line per episode) and
DIR/events.jsonl (every event's index line with who was heading off the road:
photon_policy.shadow.attribution).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import rclpy
import rclpy.executors
from ackermann_msgs.msg import AckermannDriveStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions

from photon_policy.bags.collect import TRACK_GATE, CollectError, Wiring, bag_name, collect_episode
from photon_policy.profiles import load_profile
from photon_policy.shadow.attribution import attribute
from photon_policy.shadow.clips import DRIVES, INDEX

PROFILE = "sim-shadow"
GATE_TOPIC = "/shadow_fleet/drive"
GATE_TIMEOUT_S = 2.0
SHADOW_STATUS = "shadow: shadow"
"""The shadow node's /diagnostics status (node name: what)."""
ATTEMPTS = 2
DRIVERS: dict[str, dict[str, Any]] = {
    # name: expert parameters (steering_noise_std is collect_episode's noise argument)
    "clean": {},
    "drift": {"steering_noise_std": 0.08, "noise_correlation_time": 0.5},
    "pulses": {"steering_noise_std": 0.02, "steering_pulse_interval": 4.0, "steering_pulse_duration": 0.15},
    "late_braking": {"max_braking_decel": 300.0, "speed_preview_time": 0.0},
}


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    driver: str
    bag: Path
    summary: str
    events: list[dict[str, Any]]
    run: str


def fleet_wiring(run: str, clips: Path, driver: str) -> Wiring:
    """sim-shadow with the simulator on GATE_TOPIC, the expert on collect's track gate, and the
    shadow node writing into `clips` under the run name `run`."""
    profile = load_profile(PROFILE)
    remaps = {"simulator": {"drive": GATE_TOPIC}, "expert": {"sim/track": TRACK_GATE}}
    profile = replace(profile, nodes=tuple(
        replace(spec, remappings=(*remaps.get(spec.name, {}).items(), *spec.remappings)) for spec in profile.nodes))
    overrides = {"shadow": {"output_dir": str(clips), "run_name": run, "context": driver},
                 "expert": {k: v for k, v in DRIVERS[driver].items() if k != "steering_noise_std"}}
    # The episode starts once the recorder hears /policy/drive (the policy, slowest to start, is up) and
    # the shadow node hears both commands: every answer from the first frame on can be paired.
    return Wiring(profile, "/teleop", overrides, label_topic="/policy/drive",
                  ready=tuple((SHADOW_STATUS, f"{topic} publishers") for topic in ("/teleop", "/policy/drive")))


class PolicyGate(Node):
    """Forwards the driver's command for a frame once the policy has answered that frame."""

    def __init__(self, context: rclpy.Context) -> None:
        super().__init__("shadow_fleet_gate", context=context)
        self.out = self.create_publisher(AckermannDriveStamped, GATE_TOPIC, QoSProfile(depth=100))
        self.create_subscription(AckermannDriveStamped, "/teleop", self._on_driver, QoSProfile(depth=100))
        self.create_subscription(AckermannDriveStamped, "/policy/drive", self._on_policy, QoSProfile(depth=100))
        self.create_timer(0.05, self._timeouts)
        self.answered: set[tuple[int, int]] = set()
        self.held: dict[tuple[int, int], tuple[float, AckermannDriveStamped]] = {}
        self.forwarded = 0
        self.without_policy = 0

    @staticmethod
    def _key(msg: AckermannDriveStamped) -> tuple[int, int]:
        return msg.header.stamp.sec, msg.header.stamp.nanosec

    def _on_driver(self, msg: AckermannDriveStamped) -> None:
        if self._key(msg) in self.answered:
            self._forward(msg)
        else:
            self.held[self._key(msg)] = (time.monotonic(), msg)

    def _on_policy(self, msg: AckermannDriveStamped) -> None:
        key = self._key(msg)
        self.answered.add(key)
        if len(self.answered) > 4096:  # stamps only grow within an episode: the oldest are done
            self.answered = set(sorted(self.answered)[-2048:])
        if key in self.held:
            self._forward(self.held.pop(key)[1])

    def _timeouts(self) -> None:
        now = time.monotonic()
        for key, (since, msg) in list(self.held.items()):
            if now - since > GATE_TIMEOUT_S:  # the policy is not answering: the drive goes on without it
                del self.held[key]
                self.without_policy += 1
                self._forward(msg)

    def _forward(self, msg: AckermannDriveStamped) -> None:
        self.out.publish(msg)
        self.forwarded += 1


class _Spinning:
    """PolicyGate spun on a thread of its own for the length of a `with` block."""

    def __enter__(self) -> PolicyGate:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.gate = PolicyGate(self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.gate)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        return self.gate

    def _spin(self) -> None:
        while not self.stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5.0)
        self.executor.shutdown()
        self.gate.destroy_node()
        rclpy.try_shutdown(context=self.context)


def driver_for(index: int, drivers: list[str]) -> str:
    return drivers[index % len(drivers)]


def episode_bag(out: Path, seed: int, driver: str) -> Path:
    noise = float(DRIVERS[driver].get("steering_noise_std", 0.0))
    return out / "drives" / bag_name(seed, noise, prefix=f"shadow_{driver}_")


def free_run_name(out: Path, seed: int, driver: str) -> str:
    """`s2003_drift`, or `s2003_drift_a2`, ... when an earlier (failed or interrupted) attempt's
    shadow node already wrote lines under that name."""
    used = {json.loads(s).get("run") for name in (INDEX, DRIVES) for s in _lines(out / "clips" / name)}
    base, k = f"s{seed:04d}_{driver}", 1
    while (run := base if k == 1 else f"{base}_a{k}") in used:
        k += 1
    return run


def run_episode(out: Path, seed: int, driver: str, max_steps: int, log_dir: Path,
                overrides: dict[str, dict[str, Any]] | None = None) -> EpisodeResult:
    run = free_run_name(out, seed, driver)
    noise = float(DRIVERS[driver].get("steering_noise_std", 0.0))
    bag = episode_bag(out, seed, driver)
    wiring = fleet_wiring(run, out / "clips", driver)
    with _Spinning() as gate:
        check = collect_episode(bag, seed, noise, max_steps, log_dir=log_dir, overrides=overrides, wiring=wiring)
    lines = [json.loads(s) for s in _lines(out / "clips" / INDEX)]
    events = attribute(bag, [e for e in lines if e.get("run") == run])
    summary = check.summary() + (f"; {gate.without_policy} frames driven without the policy's answer"
                                 if gate.without_policy else "")
    return EpisodeResult(seed, driver, bag, summary, events, run)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def fleet(out: Path | str, seeds: list[int], drivers: list[str], max_steps: int = 1000, progress: bool = True,
          overrides: dict[str, dict[str, Any]] | None = None, log_dir: Path | None = None) -> list[EpisodeResult]:
    """Run every seed (driver variants cycled over the seeds); appends fleet.jsonl and events.jsonl as it goes,
    so an interrupted fleet keeps what it finished."""
    unknown = [d for d in drivers if d not in DRIVERS]
    if unknown:
        raise ValueError(f"unknown driver(s) {unknown}; choose from {', '.join(DRIVERS)}")
    out = Path(out)
    done = {json.loads(s)["seed"] for s in _lines(out / "fleet.jsonl")}
    todo = [(i, s) for i, s in enumerate(seeds) if s not in done]
    log_root = log_dir or Path(tempfile.mkdtemp(prefix="photon-shadow-fleet-"))
    results = []
    bar = _progress_bar(len(todo)) if progress else None
    try:
        for i, seed in todo:
            driver = driver_for(i, drivers)
            report = bar.write if bar is not None else print
            result = None
            for attempt in range(1, ATTEMPTS + 1):
                # A seed not in fleet.jsonl never finished: its bag is a leftover of an interrupted run.
                shutil.rmtree(episode_bag(out, seed, driver), ignore_errors=True)
                try:
                    result = run_episode(out, seed, driver, max_steps, log_root / f"s{seed}_{attempt}", overrides)
                    break
                except CollectError as exc:  # e.g. DDS discovery that did not complete on a loaded machine
                    report(f"[photon] seed {seed} attempt {attempt} of {ATTEMPTS} failed: {exc}")
            if result is None:
                with open(out / "failed.jsonl", "a") as f:
                    f.write(json.dumps({"seed": seed, "driver": driver}) + "\n")
                continue
            with open(out / "events.jsonl", "a") as f:
                f.writelines(json.dumps(e, sort_keys=True) + "\n" for e in result.events)
            with open(out / "fleet.jsonl", "a") as f:
                f.write(json.dumps({"seed": seed, "driver": driver, "run": result.run,
                                    "bag": str(result.bag.relative_to(out)),
                                    "summary": result.summary, "events": len(result.events)}) + "\n")
            results.append(result)
            faults = ", ".join(e["fault"] for e in result.events) or "no events"
            report(f"[photon] seed {seed} ({driver}): {result.summary}; {faults}")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def reattribute(out: Path | str, progress: bool = True) -> int:
    """Rewrite events.jsonl from the shadow node's index and the finished episodes (after the
    attribution rule changed); returns the number of events."""
    out = Path(out)
    index = [json.loads(s) for s in _lines(out / "clips" / INDEX)]
    episodes = [json.loads(s) for s in _lines(out / "fleet.jsonl")]
    bar = _progress_bar(len(episodes)) if progress else None
    rows = []
    for episode in episodes:
        run = episode.get("run") or f"s{episode['seed']:04d}_{episode['driver']}"
        rows += attribute(out / episode["bag"], [e for e in index if e.get("run") == run])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    tmp = out / "events.jsonl.tmp"
    tmp.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in rows))
    tmp.replace(out / "events.jsonl")
    return len(rows)


def _progress_bar(total: int):
    from tqdm import tqdm
    return tqdm(total=total, desc="shadow fleet", unit="episode")
