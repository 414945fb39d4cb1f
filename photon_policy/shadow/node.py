"""shadow_node: where the policy disagrees with the driver, published and written as clips.

Subscribes (raw: the CDR bytes are buffered as they arrived; commands, odometry and the
episode status are also deserialized):
  teleop            ackermann_msgs/AckermannDriveStamped  the driver (human joystick, or the expert)
  policy/drive      ackermann_msgs/AckermannDriveStamped  the policy in shadow mode
  camera/image_raw  sensor_msgs/Image   sensor-data QoS    (buffered; a camera that stops is reported)
  imu               sensor_msgs/Imu     sensor-data QoS    (buffered)
  odom              nav_msgs/Odometry                      (buffered; distance driven)
  /tf               tf2_msgs/TFMessage                     (buffered)
  sim/episode       photon_msgs/EpisodeStatus              (simulation only: seed and score in clips)
Publishes (never a command):
  shadow/divergence photon_msgs/Divergence, one per paired policy command, in stamp order
  /diagnostics      1 Hz: pairs, unpaired by reason, events, clips written, bytes, buffer use,
                    publishers matched on the driver and policy topics (`<topic> publishers`; sent at
                    once when they change, so a tool can wait for the shadow node to hear both)
Writes, under `output_dir`: one rosbag2 MCAP bag per event (`pre_s` before to `post_s` after
it, every topic above and shadow/divergence), `index.jsonl` (one line per event, appended
and flushed when its bag is closed) and `drives.jsonl` (one line per run, at shutdown).

Parameters (config/shadow.yaml): output_dir, pre_s, post_s, buffer_mb, run_name, context,
camera_timeout_s, and the DivergenceConfig fields (photon_policy.shadow.divergence).
Ctrl-C/SIGTERM: the open event is closed, its clip written with what has arrived, and the
index and drives lines put on disk before the node exits.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ackermann_msgs.msg import AckermannDrive, AckermannDriveStamped
from nav_msgs.msg import Odometry
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, Imu
from tf2_msgs.msg import TFMessage

from photon_msgs.msg import Divergence, EpisodeStatus
from photon_policy.ros.diagnostics import Diagnostics
from photon_policy.config_files import require_non_negative, require_positive
from photon_policy.ros.node_runtime import create_wall_timer, declare_config, describe, events_executor, run_node
from photon_policy.ros.stamps import stamp_from_seconds
from photon_policy.shadow import cdr
from photon_policy.shadow.clips import DRIVES, Buffered, ClipJob, ClipWriter, RingBuffer, unique_path
from photon_policy.shadow.clips import run_name as default_run_name
from photon_policy.shadow.divergence import Command, DivergenceConfig, Event, EventDetector, Pair, Pairer


@dataclass
class ShadowParams:
    output_dir: str = describe("shadow", "directory for the clips, index.jsonl and drives.jsonl")
    pre_s: float = describe(3.0, "s of every topic kept before an event")
    post_s: float = describe(2.0, "s of every topic kept after an event")
    buffer_mb: float = describe(64.0, "memory cap of the ring buffer (MiB of serialized messages)")
    run_name: str = describe("", "names this run's clips; empty = the start time (YYYYmmdd-HHMMSS)")
    context: str = describe("", "free text copied into every index line (e.g. who drives, the fleet's driver profile)")
    camera_timeout_s: float = describe(1.0, "wall s without a camera frame (after the first) that count as a stop")

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("output_dir must name a directory")
        require_non_negative(self, "pre_s", "post_s")
        require_positive(self, "buffer_mb", "camera_timeout_s")


DRIVE_TYPE = "ackermann_msgs/msg/AckermannDriveStamped"
# Buffered topics: (default name, message class, bag type, sensor-data QoS, stamp in a sequence).
INPUTS = {
    "camera": ("camera/image_raw", Image, "sensor_msgs/msg/Image", True, False),
    "imu": ("imu", Imu, "sensor_msgs/msg/Imu", True, False),
    "odom": ("odom", Odometry, "nav_msgs/msg/Odometry", True, False),  # best effort matches any publisher
    "tf": ("/tf", TFMessage, "tf2_msgs/msg/TFMessage", False, True),
    "driver": ("teleop", AckermannDriveStamped, DRIVE_TYPE, False, False),
    "policy": ("policy/drive", AckermannDriveStamped, DRIVE_TYPE, False, False),
    "episode": ("sim/episode", EpisodeStatus, "photon_msgs/msg/EpisodeStatus", False, False),
}
SENSOR_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
"""Best effort like sensor-data QoS, but 2 s deep: on a loaded CPU the node may not run for a
while, and a clip must not miss the frames that arrived meanwhile (sensor-data QoS keeps 5)."""
REQUIRED = ("camera", "driver", "policy", "divergence")
"""A clip without one of these is reported (index line `missing_topics`, diagnostics)."""


class ShadowNode(Node):
    def __init__(self) -> None:
        super().__init__("shadow")
        self.params = p = declare_config(self, ShadowParams)
        self.config = declare_config(self, DivergenceConfig)
        self.out_dir = Path(p.output_dir)
        self.run = p.run_name or default_run_name()
        self.pairer = Pairer(self.config)
        self.detector = EventDetector(self.config)
        self.buffer = RingBuffer(int(p.buffer_mb * 2**20))
        self.writer = ClipWriter(self.out_dir, lambda text: self.get_logger().error(text))
        self.topics: dict[str, str] = {}      # resolved topic -> bag type
        self.qos_reliable: dict[str, bool] = {}
        self.waiting: list[Event] = []        # closed events whose post window has not arrived yet
        self.statuses: deque[tuple[int, bytes]] = deque(maxlen=4096)  # (stamp ns, EpisodeStatus CDR)
        self.newest_ns = 0
        self.camera_frames = 0
        self.camera_stops = 0
        self.camera_stopped = False
        self._camera_wall: float | None = None
        self.camera_out_of_order = 0
        self.clips_truncated = 0
        self.clips_missing_topics = 0
        self.distance_m = 0.0
        self.paired_s = 0.0
        self._last_odom: tuple[float, float] | None = None
        self._last_pair: float | None = None
        self._first_pair: float | None = None
        self.started = time.time()

        inputs = {}
        for key, (topic, cls, type_name, sensor, in_sequence) in INPUTS.items():
            qos = SENSOR_QOS if sensor else QoSProfile(depth=100)
            # A best-effort volatile reader matches every publisher, so its default "incompatible QoS"
            # event handler can never fire, yet the executor polls it at every wait (~2 % of a core).
            events = SubscriptionEventCallbacks(use_default_callbacks=not sensor)
            inputs[key] = self.create_subscription(
                cls, topic, lambda data, k=key, seq=in_sequence: self._on_raw(k, data, seq), qos, raw=True,
                event_callbacks=events)
        self.divergence_pub = self.create_publisher(Divergence, "shadow/divergence", QoSProfile(depth=100))
        for key, (topic, _, type_name, sensor, _) in INPUTS.items():
            resolved = self.resolve_topic_name(topic)
            self.topics[resolved] = type_name
            self.qos_reliable[resolved] = not sensor
            setattr(self, f"{key}_topic", resolved)
        self.topics[self.divergence_pub.topic_name] = "photon_msgs/msg/Divergence"
        self.command_subscriptions = (inputs["driver"], inputs["policy"])
        self._matched = self.matched_publishers()
        self.diagnostics = Diagnostics(self, "shadow", self._report, hardware_id=str(self.out_dir))
        create_wall_timer(self, 0.25, self._watch)
        self.get_logger().info(f"comparing {self.policy_topic} with {self.driver_topic}; clips "
                               f"({p.pre_s:g} s before, {p.post_s:g} s after) into {self.out_dir}")

    # --- messages in -----------------------------------------------------------------------------
    def _on_raw(self, key: str, data: bytes, in_sequence: bool) -> None:
        stamp_ns = cdr.stamp_ns(data, in_sequence)
        topic = getattr(self, f"{key}_topic")
        if stamp_ns is None:
            stamp_ns = self.newest_ns  # an empty TF message: keep it with what arrived with it
        self.buffer.add(Buffered(stamp_ns, time.time_ns(), topic, bytes(data)))
        handler = getattr(self, f"_on_{key}", None)
        if handler is not None:
            handler(data, stamp_ns)
        if key in ("camera", "driver", "policy"):
            self.newest_ns = max(self.newest_ns, stamp_ns)
            self._write_ready_clips()

    def _on_camera(self, data: bytes, stamp_ns: int) -> None:
        if stamp_ns < self.newest_ns - int(self.config.max_gap_s * 1e9):
            self.camera_out_of_order += 1
        self.camera_frames += 1
        self._camera_wall = time.monotonic()
        if self.camera_stopped:
            self.camera_stopped = False
            self.get_logger().info("camera frames again")

    def _on_odom(self, data: bytes, stamp_ns: int) -> None:
        t, v = stamp_ns * 1e-9, cdr.odom_forward_speed(data)
        if self._last_odom is not None and 0.0 < t - self._last_odom[0] <= self.config.max_gap_s \
                and math.isfinite(v):
            self.distance_m += abs(v) * (t - self._last_odom[0])
        if self._last_odom is None or t > self._last_odom[0]:
            self._last_odom = (t, v)

    def _on_episode(self, data: bytes, stamp_ns: int) -> None:
        self.statuses.append((stamp_ns, bytes(data)))  # read when a clip needs it

    def _on_driver(self, data: bytes, stamp_ns: int) -> None:
        self._handle(self.pairer.add_driver(self._command(data)))

    def _on_policy(self, data: bytes, stamp_ns: int) -> None:
        self._handle(self.pairer.add_policy(self._command(data)))

    @staticmethod
    def _command(data: bytes) -> Command:
        return Command(*cdr.drive(data))

    # --- pairs, events, clips ----------------------------------------------------------------------
    def _handle(self, pairs: list[Pair]) -> None:
        for pair in pairs:
            if self._last_pair is not None and 0.0 < pair.stamp - self._last_pair <= self.config.max_gap_s:
                self.paired_s += pair.stamp - self._last_pair
            self._last_pair = pair.stamp
            if self._first_pair is None:
                self._first_pair = pair.stamp
            opened, closed = self.detector.update(pair)
            self._close(closed)
            if opened is not None:
                self.get_logger().info(f"event {opened.id} opened at {opened.start:.2f} s")
            self._publish(pair)

    def _publish(self, pair: Pair) -> None:
        msg = Divergence()
        msg.header.stamp = stamp_from_seconds(pair.stamp)
        msg.header.frame_id = "base_link"
        msg.policy = AckermannDrive(steering_angle=float(pair.policy.steering), speed=float(pair.policy.speed))
        msg.human = AckermannDrive(steering_angle=float(pair.driver.steering), speed=float(pair.driver.speed))
        msg.steering_error = float(pair.steering_error)
        msg.speed_error = float(pair.speed_error)
        msg.score = float(pair.score)
        event = self.detector.open
        msg.is_event = event is not None
        msg.event_id = event.id if event is not None else 0
        data = serialize_message(msg)
        self.divergence_pub.publish(data)  # serialized once: the same bytes go out and into the buffer
        self.buffer.add(Buffered(round(pair.stamp * 1e9), time.time_ns(), self.divergence_pub.topic_name, data))

    def _close(self, events: list[Event]) -> None:
        for event in events:
            self.get_logger().info(f"event {event.id} closed ({event.closed_by}): {event.start:.2f}-"
                                   f"{event.end:.2f} s, peak {event.peak:.2f}")
            self.waiting.append(event)

    def _write_ready_clips(self, cut_short: bool = False) -> None:
        for event in list(self.waiting):
            if cut_short or self.newest_ns * 1e-9 >= event.end + self.params.post_s:
                self.waiting.remove(event)
                self.writer.submit(self._job(event, cut_short))

    def _job(self, event: Event, cut_short: bool) -> ClipJob:
        p = self.params
        start_ns, end_ns = round((event.start - p.pre_s) * 1e9), round((event.end + p.post_s) * 1e9)
        messages, truncated = self.buffer.window(start_ns, end_ns)
        present = {m.topic for m in messages}
        wanted = [getattr(self, f"{k}_topic") if k != "divergence" else self.divergence_pub.topic_name
                  for k in REQUIRED]
        missing = [t for t in wanted if t not in present]
        if truncated:
            self.clips_truncated += 1
            self.get_logger().warning(f"event {event.id}: longer than the buffer holds ({self.buffer.span_s():.1f} s"
                                      f" at buffer_mb={p.buffer_mb:g}): its clip starts late")
        if missing:
            self.clips_missing_topics += 1
            self.get_logger().warning(f"event {event.id}: clip without {', '.join(missing)}")
        line = {"run": self.run, "id": event.id, "start": event.start, "end": event.end,
                "duration": event.end - event.start, "peak": event.peak, "peak_stamp": event.peak_stamp,
                "mean": event.mean(), "samples": len(event.pairs), "closed_by": event.closed_by,
                "speed": event.mean(lambda q: q.driver.speed),
                "driver_steering": event.mean(lambda q: q.driver.steering),
                "policy_steering": event.mean(lambda q: q.policy.steering),
                "policy_speed": event.mean(lambda q: q.policy.speed),
                "clip_start": start_ns * 1e-9, "clip_end": end_ns * 1e-9, "truncated": truncated,
                "cut_short": cut_short, "missing_topics": missing, "context": p.context,
                "messages": {t: sum(m.topic == t for m in messages) for t in sorted(present)},
                **self._episode_fields(start_ns * 1e-9, end_ns * 1e-9)}
        path = unique_path(self.out_dir, f"{self.run}_ev{event.id:04d}")
        return ClipJob(path, messages, dict(self.topics), line, dict(self.qos_reliable))

    def _episode_fields(self, start: float, end: float) -> dict[str, Any]:
        """Simulation: the seed, episode and the simulator's score change over the clip."""
        inside = [deserialize_message(data, EpisodeStatus) for stamp_ns, data in self.statuses
                  if start <= stamp_ns * 1e-9 <= end]
        if not inside:
            return {}
        first, last = inside[0], inside[-1]
        return {"seed": int(first.seed), "episode": int(first.episode), "score_start": first.score - first.reward,
                "score_end": last.score, "score_change": last.score - (first.score - first.reward),
                "episode_reason": last.reason if last.done else "", "same_episode": first.episode == last.episode}

    # --- watch, diagnostics, shutdown ----------------------------------------------------------------
    def _watch(self) -> None:
        if self._camera_wall is not None and not self.camera_stopped \
                and time.monotonic() - self._camera_wall > self.params.camera_timeout_s:
            self.camera_stopped = True
            self.camera_stops += 1
            self.get_logger().warning(f"no camera frame for {self.params.camera_timeout_s:g} s")
        self._handle(self.pairer.resolve())
        matched = self.matched_publishers()
        if matched != self._matched:
            self._matched = matched
            self.diagnostics.publish()

    def matched_publishers(self) -> dict[str, int]:
        """Publishers heard on the two command topics: before both are heard, answers go unpaired."""
        return {f"{sub.topic_name} publishers": sub.get_publisher_count() for sub in self.command_subscriptions}

    def _report(self) -> tuple[dict, list[str]]:
        pr, w = self.pairer, self.writer
        values = {"pairs": pr.pairs, "policy_commands": pr.policy_commands,
                  "pairing_rate": f"{pr.rate:.4f}", "unpaired": sum(pr.unpaired.values()),
                  **{f"unpaired_{k}": v for k, v in pr.unpaired.items()},
                  **{f"dropped_{k}": v for k, v in pr.dropped.items()},
                  "events": self.detector.events, "event_open": self.detector.open is not None,
                  "clips_written": w.counts["clips"], "clip_errors": w.counts["clip_errors"],
                  "index_errors": w.counts["index_errors"], "clips_truncated": self.clips_truncated,
                  "clips_missing_topics": self.clips_missing_topics, "clip_bytes": w.bytes,
                  "clips_queued": w.pending + len(self.waiting),
                  "buffer_bytes": self.buffer.bytes, "buffer_cap_bytes": self.buffer.max_bytes,
                  "buffer_span_s": f"{self.buffer.span_s():.2f}", "camera_frames": self.camera_frames,
                  "camera_stops": self.camera_stops, "camera_out_of_order": self.camera_out_of_order,
                  "distance_m": f"{self.distance_m:.1f}", "paired_s": f"{self.paired_s:.1f}",
                  **self.matched_publishers()}
        problems = [text for text, bad in (
            ("camera stopped", self.camera_stopped),
            (f"{w.counts['clip_errors']} clips not written ({w.last_error})", w.counts["clip_errors"]),
            (f"{w.counts['index_errors']} index lines not written", w.counts["index_errors"]),
            (f"{self.clips_truncated} clips longer than the buffer", self.clips_truncated),
            (f"{self.clips_missing_topics} clips missing topics", self.clips_missing_topics),
            (f"{sum(pr.unpaired.values())} policy commands unpaired", pr.unpaired)) if bad]
        return values, problems

    def drive_line(self) -> dict[str, Any]:
        pr = self.pairer
        seeds = sorted({int(deserialize_message(data, EpisodeStatus).seed) for _, data in self.statuses})
        return {"run": self.run, "context": self.params.context, "seeds": seeds, "paired_s": self.paired_s,
                "first_pair": self._first_pair, "last_pair": self._last_pair,
                "distance_m": self.distance_m, "pairs": pr.pairs, "policy_commands": pr.policy_commands,
                "unpaired": dict(pr.unpaired), "dropped": dict(pr.dropped), "events": self.detector.events,
                "clips": self.writer.counts["clips"], "clip_errors": self.writer.counts["clip_errors"],
                "camera_frames": self.camera_frames, "camera_stops": self.camera_stops,
                "wall_s": time.time() - self.started}

    def finish(self) -> None:
        """Close the open event, write every clip still waiting, and the run's drives line."""
        self._handle(self.pairer.resolve(flush=True))
        self._close(self.detector.finish())
        self._write_ready_clips(cut_short=True)
        self.writer.close()
        self.writer.append(DRIVES, self.drive_line())

    def publish_safe_state(self) -> None:
        """Ctrl-C/SIGTERM: the shadow node commands nothing; its safe state is its clips on disk."""
        self.finish()
        self.diagnostics.publish()

    def destroy_node(self) -> None:
        if self.writer.running:  # shut down without a live context: still leave the clips
            self.finish()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(ShadowNode, args, executor_factory=events_executor())


if __name__ == "__main__":
    raise SystemExit(main())
