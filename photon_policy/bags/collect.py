"""Collect training data: one bag per simulated episode, recorded through the ROS loop.

For each seed the recorder node and a driving profile run one episode in lockstep. The
episode starts only once the recorder hears every publisher (see collect_episode), and
the simulator and drivers run at a lower CPU priority than the recorder
(PRODUCER_NICENESS). When the simulator exits after its episode, the recorder is stopped
with SIGINT (it drains and closes the bag) and the bag is checked: every frame the
episode produced, each with its command, label and odometry (BagCheck).

Who drives (collection_wiring):
  expert, no noise   the `sim` profile: the expert's /teleop drives the car and is the label
  expert, noise > 0  DART: the expert executes its noisy command on /drive (the simulator
                     drives from /drive) and publishes its clean command on /teleop, so the
                     bag holds /drive as the applied command and /teleop as clean labels
  policy             DAgger: the `sim-dagger` profile: the policy drives on /drive and the
                     expert labels every frame on /teleop
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import rclpy
from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Path as PathMsg
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from photon_msgs.msg import EpisodeStatus
from photon_policy.bags.reader import DRIVE, ODOM, read_episodes, read_raw
from photon_policy.bags.recorder import check_output_dir
from photon_policy.bags.recorder_node import DEFAULT_TOPICS
from photon_policy.bags.typestore import photon_typestore
from photon_policy.launcher import ProfileProcesses
from photon_policy.lockstep import LockstepRun, RunError
from photon_policy.profiles import NodeSpec, Profile, load_profile

PROFILE = "sim"
CAMERA_TOPIC = "/camera/image_raw"
TRACK_GATE = "/collect/track"
"""The expert's track input during collection; see collect_episode."""
DRIVE_GATE = "/collect/drive"
"""The simulator's drive input when the policy drives during collection; see collect_episode."""
LOOP_TOPICS = ["/camera/image_raw", "/camera/camera_info", "/imu", "/odom", "/tf", "/clock", "/sim/episode",
               "/teleop"]
"""Topics published once per frame: the recorder must hear each one's publisher before the episode starts
(and the command topic, when it is not /teleop)."""
DRIVERS = ("expert", "policy")
PRODUCER_NICENESS = 5
"""The simulator and the expert run this much nicer than the recorder. Lockstep runs as fast as they
can, and nothing in the loop waits for the recorder: when the CPU is short, the recorder must be the
one that gets it, or the publishers' queues (best-effort frames in a 512 KiB shared-memory segment,
odometry in a reliable keep-last-10 history) overrun before it reads them."""
RECORDER_STATUS = "recorder: bag"
"""The recorder's /diagnostics status, with a `<topic> publishers` key per topic."""
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class CollectError(RunError):
    """A collected episode that cannot be trusted; the message says why and where the logs are."""


def bag_name(seed: int, noise_std: float, prefix: str = "ep_") -> str:
    """`ep_s0042_n0.05`: the seed and the expert's steering noise, sortable."""
    return f"{prefix}s{seed:04d}_n{noise_std:g}"


def recorder_profile(output: Path, topics: list[str] | None = None, storage: str = "mcap") -> Profile:
    """A one-node profile that runs the recorder (it is not part of any driving profile)."""
    spec = NodeSpec(name="recorder", executable="recorder_node", parameter_files=(), use_sim_time=False,
                    overrides={"output": str(output), "topics": list(topics or DEFAULT_TOPICS),
                               "storage": storage})
    return Profile(name="record", description="rosbag2 recorder", nodes=(spec,))


@dataclass(frozen=True)
class BagCheck:
    """A collected bag against its episode: every frame (steps + the reset frame), each with the
    applied command, the label and the odometry stamped exactly at that frame."""
    path: Path
    seed: int | None
    steps: int
    reason: str
    frames: int
    expected: int
    without_command: int = 0
    without_odom: int = 0
    without_label: int = 0

    @property
    def dropped(self) -> int:
        """Frames missing from the bag."""
        return max(self.expected - self.frames, 0)

    @property
    def complete(self) -> bool:
        return self.dropped == 0 and self.without_command == 0 and self.without_odom == 0 \
            and self.without_label == 0

    def summary(self) -> str:
        problems = [f"{n} {what}" for n, what in ((self.dropped, "frames DROPPED"),
                                                  (self.without_command, "frames without their command"),
                                                  (self.without_label, "frames without their label"),
                                                  (self.without_odom, "frames without their odometry")) if n]
        return (f"{self.path.name}: seed {self.seed}, {self.steps} steps ({self.reason}), "
                f"{self.frames}/{self.expected} frames" + (f"; {', '.join(problems)}" if problems else ""))


@dataclass(frozen=True)
class Wiring:
    """What a collection runs: the profile (with collection's gates) and its topics."""
    profile: Profile
    command_topic: str
    """The command the simulator executes (recorded as the applied command)."""
    overrides: dict[str, dict[str, Any]]
    """Node parameters for every episode."""
    label_topic: str = "/teleop"
    gate_drive: bool = False
    """The simulator reads DRIVE_GATE, which collect feeds from /drive once the episode may start."""
    ready: tuple[tuple[str, str], ...] = ()
    """More to wait for before the gates open, as the recorder's `<topic> publishers` are waited for:
    (diagnostic status name, key) pairs whose value must be >= 1."""


def collection_wiring(driver: str = "expert", noise_std: float = 0.0, checkpoint: str | None = None) -> Wiring:
    """The profile and topics of a collection (see the module docstring)."""
    if driver not in DRIVERS:
        raise ValueError(f"unknown driver '{driver}'; choose from {', '.join(DRIVERS)}")
    if driver == "policy":
        if noise_std > 0.0:
            raise ValueError("steering noise is the expert's; the policy drives without it")
        overrides = {"policy": {"checkpoint": str(checkpoint)}} if checkpoint else {}
        return Wiring(_remapped(load_profile("sim-dagger"), simulator={"drive": DRIVE_GATE}),
                      "/drive", overrides, gate_drive=True)
    if checkpoint:
        raise ValueError("a checkpoint is for --driver policy")
    profile = load_profile(PROFILE)
    if noise_std == 0.0:
        return Wiring(_remapped(profile), "/teleop", {})
    # DART: the simulator executes /drive (its default input), the expert's noisy command.
    sim = profile.node("simulator")
    profile = replace(profile, nodes=tuple(
        replace(spec, remappings=tuple(r for r in sim.remappings if r[0] != "drive")) if spec is sim else spec
        for spec in profile.nodes))
    return Wiring(_remapped(profile), "/drive", {"expert": {"label_topic_clean": True}})


def _remapped(profile: Profile, **remaps: dict[str, str]) -> Profile:
    """The profile with the expert's track input moved to TRACK_GATE and `remaps` per node put first
    (ROS applies the first rule that matches)."""
    remaps.setdefault("expert", {})["sim/track"] = TRACK_GATE
    return replace(profile, nodes=tuple(
        replace(spec, remappings=(*remaps.get(spec.name, {}).items(), *spec.remappings)) for spec in profile.nodes))


class _Monitor(Node):
    """Collect's own node: the episode's final status, the recorder's diagnostics, the track gate and,
    when the policy drives, the drive gate."""

    def __init__(self, context: rclpy.Context, gate_drive: bool = False) -> None:
        super().__init__("photon_collect_monitor", context=context)
        self.final: EpisodeStatus | None = None
        self.step = 0
        self.last_status_at: float | None = None
        self.track: PathMsg | None = None
        self.statuses: dict[str, dict[str, str]] = {}
        reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(EpisodeStatus, "/sim/episode", self._on_status, reliable)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
        self.create_subscription(PathMsg, "/sim/track", self._on_track, LATCHED)
        self.gate = self.create_publisher(PathMsg, TRACK_GATE, LATCHED)
        self.drive_open = False
        self._drive: AckermannDriveStamped | None = None
        if gate_drive:
            self.drive_gate = self.create_publisher(AckermannDriveStamped, DRIVE_GATE, QoSProfile(depth=10))
            self.create_subscription(AckermannDriveStamped, "/drive", self._on_drive, QoSProfile(depth=10))

    def open_gates(self) -> None:
        """Let the episode run: the expert gets its track, the simulator the policy's commands
        (starting with its answer to the frame the simulator holds)."""
        self.gate.publish(self.track)
        if hasattr(self, "drive_gate"):
            self.drive_open = True
            if self._drive is not None:
                self.drive_gate.publish(self._drive)

    def _on_drive(self, msg: AckermannDriveStamped) -> None:
        self._drive = msg
        if self.drive_open:
            self.drive_gate.publish(msg)

    def _on_status(self, msg: EpisodeStatus) -> None:
        self.last_status_at = time.monotonic()
        self.step = max(self.step, int(msg.step))
        if msg.done and msg.reason != "shutdown" and self.final is None:
            self.final = msg

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.statuses[status.name] = {kv.key: kv.value for kv in status.values}

    def _on_track(self, msg: PathMsg) -> None:
        self.track = msg

    def unmatched(self, ready: tuple[tuple[str, str], ...]) -> list[str]:
        """The (diagnostic status, key) pairs not yet reported >= 1 (all of them before a node's first
        report), as "status: key"."""
        return [f"{name}: {key}" for name, key in ready if int(self.statuses.get(name, {}).get(key, "0")) < 1]


def check_bag(path: Path, final: EpisodeStatus | None = None, command_topic: str = "/teleop",
              label_topic: str = "/teleop") -> BagCheck:
    """Read a collected bag back; `final` (the episode's last status, if seen live) sets the expectation."""
    [episode] = read_episodes(path, camera_topic=CAMERA_TOPIC)
    steps = int(final.step) if final is not None else episode.final_step
    reason = final.reason if final is not None else episode.final_reason
    frames = set(np.round(episode.arrays.stamps * 1e9).astype(np.int64).tolist())
    stamped = _header_stamps(path, {command_topic: DRIVE, label_topic: DRIVE, "/odom": ODOM})
    return BagCheck(path=path, seed=episode.arrays.seed, steps=steps, reason=reason,
                    frames=len(frames), expected=steps + 1,
                    without_command=len(frames - stamped[command_topic]), without_odom=len(frames - stamped["/odom"]),
                    without_label=len(frames - stamped[label_topic]))


def _header_stamps(path: Path, topics: dict[str, str]) -> dict[str, set[int]]:
    raw, _, _ = read_raw(path, set(topics))
    store = photon_typestore()
    out = {}
    for topic, msgtype in topics.items():
        headers = (store.deserialize_cdr(data, msgtype).header.stamp for _, data in raw.get(topic, []))
        out[topic] = {s.sec * 1_000_000_000 + s.nanosec for s in headers}
    return out


def collect_episode(path: Path, seed: int, noise_std: float, max_steps: int = 1000,
                    log_dir: Path | None = None, overrides: dict[str, dict[str, Any]] | None = None,
                    stall_timeout_s: float = 60.0, ready_timeout_s: float = 60.0,
                    wiring: Wiring | None = None, on_step: Callable[[int], None] | None = None) -> BagCheck:
    """Record one lockstep episode on `seed` into the bag `path` (default wiring: the expert's,
    for `noise_std`).

    Nothing may run before the recorder hears every publisher, yet DDS discovery between
    processes takes anywhere from milliseconds to seconds (the next periodic announcement).
    So the expert reads its track from TRACK_GATE instead of sim/track, and does not drive
    without one, and when the policy drives, the simulator reads its commands from
    DRIVE_GATE, which we feed from /drive: the lockstep simulator holds its first frame
    (re-sending it) until we open the gates, once the recorder reports a matched publisher
    on every topic of the loop (and the wiring's `ready` diagnostics are >= 1). Holding frame 0
    changes nothing in a lockstep episode.
    """
    check_output_dir(path)
    wiring = wiring or collection_wiring("expert", noise_std)
    node_overrides = {k: dict(v) for k, v in wiring.overrides.items()}
    for node, values in (overrides or {}).items():
        node_overrides.setdefault(node, {}).update(values)
    node_overrides.setdefault("simulator", {}).update(mode="lockstep", seeds=str(seed), repeat=False,
                                                      max_steps=max_steps)
    node_overrides.setdefault("expert", {}).update(steering_noise_std=float(noise_std), noise_seed=seed)
    loop_topics = list(dict.fromkeys([*LOOP_TOPICS, wiring.command_topic, wiring.label_topic]))
    ready = tuple((RECORDER_STATUS, f"{topic} publishers") for topic in loop_topics) + wiring.ready
    run = LockstepRun(lambda context: _Monitor(context, wiring.gate_drive), log_dir, prefix="photon-collect-")
    recorder = ProfileProcesses(recorder_profile(path), log_dir=run.log_dir)
    sim = ProfileProcesses(wiring.profile, node_overrides, log_dir=run.log_dir)
    [simulator] = [n for n in sim.nodes if n.name == "simulator"]
    with run:
        monitor: _Monitor = run.monitor
        run.start(recorder, sim)
        for node in sim.nodes:
            _lower_priority(node.process.pid, PRODUCER_NICENESS)
        run.spin_until(lambda: monitor.track is not None and not monitor.unmatched(ready),
                       ready_timeout_s, "the recorder (and the wiring's nodes) to hear every publisher",
                       detail=lambda: f"; unmatched: {', '.join(monitor.unmatched(ready)) or 'none'}, "
                                      f"track {'received' if monitor.track else 'missing'}")
        monitor.open_gates()
        stalled = run.stall_check(lambda: monitor.last_status_at, stall_timeout_s)

        def check() -> None:
            stalled()
            if on_step is not None:
                on_step(monitor.step)
        run.spin_until(lambda: simulator.returncode is not None, 7 * 24 * 3600.0, "the episode", check)
        run.check_nodes()
        end = time.monotonic() + 5.0  # statuses still queued here: the final one may be among them
        while monitor.final is None and time.monotonic() < end:
            run.executor.spin_once(timeout_sec=0.05)
        codes = recorder.stop(grace_s=30.0)  # SIGINT: it drains what arrived and closes the bag
        if codes.get("recorder") != 0:
            raise CollectError(f"recorder exited with code {codes.get('recorder')} (logs in {run.log_dir}):\n"
                               f"{recorder.log_tail('recorder')}")
    if monitor.final is None:
        raise CollectError(f"seed {seed}: the simulator exited without a final episode status "
                           f"(logs in {run.log_dir})")
    return check_bag(path, monitor.final, wiring.command_topic, wiring.label_topic)


def collect(out_dir: Path | str, seeds: list[int], noise_std: float, max_steps: int = 1000,
            progress: bool = True, prefix: str = "ep_", log_dir: Path | None = None,
            driver: str = "expert", checkpoint: str | None = None,
            overrides: dict[str, dict[str, Any]] | None = None) -> list[Path]:
    """One bag per seed under `out_dir` (named by `bag_name`); returns their paths in seed order.
    `driver` policy: the policy (`checkpoint`, default the shipped one) drives, the expert labels.
    `overrides`: node parameters for every episode ({node: {param: value}}).

    Fails before running anything if one of the bags already exists. Frames dropped
    by the recorder are reported per bag (they also show as segments when read).
    """
    wiring = collection_wiring(driver, noise_std, checkpoint)
    out_dir = Path(out_dir)
    paths = [out_dir / bag_name(seed, noise_std, prefix) for seed in seeds]
    existing = [p for p in paths if p.exists()]
    if existing:
        raise CollectError(f"{len(existing)} bag(s) already exist, e.g. {existing[0]}; "
                           "choose another --out or remove them")
    log_root = log_dir or Path(tempfile.mkdtemp(prefix="photon-collect-"))
    bar = _progress_bar(len(seeds) * max_steps) if progress else None
    try:
        for seed, path in zip(seeds, paths):
            done_before = bar.n if bar is not None else 0
            check = collect_episode(path, seed, noise_std, max_steps, log_dir=log_root / path.name,
                                    overrides=overrides, wiring=wiring,
                                    on_step=(lambda step: bar.update(done_before + step - bar.n)) if bar else None)
            report = bar.write if bar is not None else print
            if not check.complete or progress:
                report(f"[photon] {check.summary()}")
            if bar is not None:
                bar.update(done_before + max_steps - bar.n)  # an episode ends early when its lap is done
    finally:
        if bar is not None:
            bar.close()
    return paths


def _lower_priority(pid: int, niceness: int) -> None:
    """Make every thread of `pid` nicer by `niceness` (allowed without privileges: it only lowers)."""
    for tid in {pid, *(int(t.name) for t in Path(f"/proc/{pid}/task").glob("*") if t.name.isdigit())}:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + niceness, 19))
        except OSError:  # the thread or process is gone; nothing to slow down
            pass


def _progress_bar(total_steps: int):
    """Counts simulator steps (episodes run up to max_steps each), so it moves every second."""
    from tqdm import tqdm
    return tqdm(total=total_steps, desc="collect", unit="step", unit_scale=True, mininterval=0.5)
