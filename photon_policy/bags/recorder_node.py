"""recorder_node: records topics into a rosbag2 bag (MCAP by default), like `ros2 bag record`.

Subscribes (raw: the serialized CDR is written as it arrives, never deserialized):
  every topic in `topics` (default DEFAULT_TOPICS). Topics of a known type are
  subscribed at start-up, so nothing published after the recorder is up is missed;
  others once a publisher shows up in the graph. Topics that never appear are
  absent from the bag.
Publishes:
  /diagnostics  diagnostic_msgs/DiagnosticArray, 1 Hz and whenever a topic gains or loses
                a publisher: per topic, messages recorded (key `<topic>`) and publishers
                matched (key `<topic> publishers`)
Parameters: `output` (bag directory; must not exist or be empty), `topics`,
  `storage` (mcap | sqlite3), `depth` (subscription history), `compress` (zstd MCAP chunks).

QoS: sensor topics are subscribed best effort, /tf_static and sim/track transient
local, the rest reliable; a subscription is relaxed (to best effort, or volatile)
when a publisher offers less, so it always matches. Each topic's offered QoS goes
into the bag as `ros2 bag record` writes it. Messages are indexed by receive time
(system clock); the reader aligns by header stamps.

Ctrl-C (or SIGTERM): the message being written is finished, the messages already
received and those arriving until CLOSE_QUIET_S passes without one are written, and
the bag is closed (metadata.yaml written), so an interrupted recording is a complete
bag. A second Ctrl-C stops at once.
"""
from __future__ import annotations

import importlib
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from photon_policy.bags.recorder import INFINITE, STORAGES, BagWriteError, BagWriter
from photon_policy.ros.diagnostics import Diagnostics
from photon_policy.ros.node_runtime import ConfigError, create_wall_timer, declare_config, describe, run_node

SENSOR, RELIABLE, LATCHED = "sensor", "reliable", "latched"

# topic -> (type, how its publisher offers it). A known type lets the recorder subscribe
# before the publisher exists, so the first frames of a run are not lost.
KNOWN_TOPICS: dict[str, tuple[str, str]] = {
    "/camera/image_raw": ("sensor_msgs/msg/Image", SENSOR),
    "/camera/camera_info": ("sensor_msgs/msg/CameraInfo", SENSOR),
    "/imu": ("sensor_msgs/msg/Imu", SENSOR),
    "/odom": ("nav_msgs/msg/Odometry", RELIABLE),
    "/drive": ("ackermann_msgs/msg/AckermannDriveStamped", RELIABLE),
    "/teleop": ("ackermann_msgs/msg/AckermannDriveStamped", RELIABLE),
    "/policy/drive": ("ackermann_msgs/msg/AckermannDriveStamped", RELIABLE),
    "/shadow/divergence": ("photon_msgs/msg/Divergence", RELIABLE),
    "/tf": ("tf2_msgs/msg/TFMessage", RELIABLE),
    "/tf_static": ("tf2_msgs/msg/TFMessage", LATCHED),
    "/sim/episode": ("photon_msgs/msg/EpisodeStatus", RELIABLE),
    "/sim/track": ("nav_msgs/msg/Path", LATCHED),
    "/clock": ("rosgraph_msgs/msg/Clock", RELIABLE),
    "/diagnostics": ("diagnostic_msgs/msg/DiagnosticArray", RELIABLE),
}
DEFAULT_TOPICS = list(KNOWN_TOPICS)
CLOSE_QUIET_S = 0.25
"""At Ctrl-C, messages still on their way (the last frame's, sent just before the stop) are taken
until none has arrived for this long; at most CLOSE_MAX_S."""
CLOSE_MAX_S = 2.0
IDLE_WARNING_S = 5.0
"""With nothing but /diagnostics recorded for this long, the recorder warns (and again every 30 s)."""


@dataclass
class RecorderParams:
    output: str = describe("bag", "bag directory to create (must not exist, or be empty)")
    topics: list = describe(DEFAULT_TOPICS, "topics to record; absent ones are left out of the bag")
    storage: str = describe("mcap", "mcap | sqlite3")
    depth: int = describe(1000, "subscription history per topic: how far the recorder may fall behind")
    compress: bool = describe(True, "mcap: zstd-compress chunks (camera frames shrink ~10x)")

    def __post_init__(self) -> None:
        if self.storage not in STORAGES:
            raise ValueError(f"storage '{self.storage}' is not one of {sorted(STORAGES)}")
        if not self.output:
            raise ValueError("output must name a directory")
        if not self.topics or not all(isinstance(t, str) and t for t in self.topics):
            raise ValueError(f"topics must be a non-empty list of topic names, got {self.topics!r}")
        if self.depth < 1:
            raise ValueError(f"depth={self.depth} must be >= 1")


PARAMETERS = ((RecorderParams, ""),)
"""Every parameter the node declares: (config dataclass, name prefix)."""


def subscription_qos(kind: str, depth: int) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.BEST_EFFORT if kind == SENSOR else ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if kind == LATCHED else DurabilityPolicy.VOLATILE)


def _qos_time(duration: Any) -> QosTime:
    ns = duration.nanoseconds
    if ns >= 2**63 - 1 or ns <= 0:  # rmw reports "infinite" (and "unset") this way
        return INFINITE
    return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)


def _enum(cls: Any, value: Any, unknown: Any) -> Any:
    try:
        return cls(int(value))
    except ValueError:
        return unknown


def bag_qos(profile: QoSProfile) -> Qos:
    """A publisher's offered QoS (from the graph) as rosbag2 metadata records it."""
    return Qos(_enum(QosHistory, profile.history, QosHistory.UNKNOWN), int(profile.depth),
               _enum(QosReliability, profile.reliability, QosReliability.UNKNOWN),
               _enum(QosDurability, profile.durability, QosDurability.UNKNOWN),
               _qos_time(profile.deadline), _qos_time(profile.lifespan),
               _enum(QosLiveliness, profile.liveliness, QosLiveliness.UNKNOWN),
               _qos_time(profile.liveliness_lease_duration), bool(profile.avoid_ros_namespace_conventions))


def message_class(type_name: str) -> type:
    """`pkg/msg/Type` -> the generated Python class (raises ImportError/AttributeError if not built)."""
    pkg, _, name = type_name.partition("/msg/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


@dataclass
class _Recorded:
    """One recorded topic: its type, the QoS we ask for, and our subscription."""
    type_name: str
    qos: QoSProfile
    subscription: Subscription | None = None


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        self.params = declare_config(self, RecorderParams)
        try:
            self.bag = BagWriter(self.params.output, storage=self.params.storage, compress=self.params.compress)
        except BagWriteError as exc:
            raise ConfigError(str(exc)) from exc
        self.wanted = [self.resolve_topic_name(t) for t in self.params.topics]
        self.recorded: dict[str, _Recorded] = {}
        self.write_errors = 0
        self._warned: set[str] = set()
        self._matched: dict[str, int] = {}
        for topic in self.wanted:
            if topic in KNOWN_TOPICS:
                type_name, kind = KNOWN_TOPICS[topic]
                self._subscribe(topic, type_name, subscription_qos(kind, self.params.depth))
        create_wall_timer(self, 0.25, self._watch_graph)
        self.diagnostics = Diagnostics(self, "bag", self._diagnostic_report, hardware_id="rosbag2")
        self._started = time.monotonic()
        create_wall_timer(self, IDLE_WARNING_S, self._warn_if_idle)
        # Ctrl-C/SIGTERM end run_node's spin loop between callbacks (`finished`), never inside one:
        # a KeyboardInterrupt between taking a message and writing it would lose that message.
        self.finished = False
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self._on_stop_signal)
        self.get_logger().info(f"recording {len(self.wanted)} topics into {self.bag.path} ({self.params.storage})")

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        if self.finished:
            raise KeyboardInterrupt  # a second Ctrl-C: stop at once
        self.finished = True

    # --- subscriptions -----------------------------------------------------------------------
    def _subscribe(self, topic: str, type_name: str, qos: QoSProfile) -> None:
        try:
            cls = message_class(type_name)
        except (ImportError, AttributeError):
            self._warn_once(topic, f"{topic}: message type {type_name} is not installed here; not recording it")
            return
        old = self.recorded.get(topic)
        if old is not None and old.subscription is not None:
            self.destroy_subscription(old.subscription)
        entry = _Recorded(type_name, qos)
        entry.subscription = self.create_subscription(
            cls, topic, lambda data, info, t=topic: self._on_message(t, data, info), qos, raw=True)
        self.recorded[topic] = entry

    def _watch_graph(self) -> None:
        """Subscribe to newly published unknown topics; relax QoS a publisher does not offer."""
        for topic in self.wanted:
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            entry = self.recorded.get(topic)
            offered_type = publishers[0].topic_type
            if entry is None or (entry.type_name != offered_type and self.bag.counts[topic] == 0):
                kind = KNOWN_TOPICS.get(topic, ("", RELIABLE))[1]
                self._subscribe(topic, offered_type, self._matching_qos(subscription_qos(kind, self.params.depth),
                                                                        publishers))
                continue
            if entry.type_name != offered_type:
                self._warn_once(topic, f"{topic}: a publisher offers {offered_type}, recording {entry.type_name}")
            qos = self._matching_qos(entry.qos, publishers)
            if qos is not entry.qos:
                self.get_logger().info(f"{topic}: a publisher offers {qos.reliability.name.lower()}/"
                                       f"{qos.durability.name.lower()}; resubscribing to match")
                self._subscribe(topic, entry.type_name, qos)
        matched = self.matched_publishers()
        if matched != self._matched:  # tell tools (collect) at once that the recorder hears a new publisher
            self._matched = matched
            self.diagnostics.publish()

    def matched_publishers(self) -> dict[str, int]:
        return {topic: entry.subscription.get_publisher_count()
                for topic, entry in self.recorded.items() if entry.subscription is not None}

    @staticmethod
    def _matching_qos(qos: QoSProfile, publishers: list) -> QoSProfile:
        """`qos`, relaxed where some publisher offers less (best effort, volatile), else unchanged."""
        reliability, durability = qos.reliability, qos.durability
        if any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers):
            reliability = ReliabilityPolicy.BEST_EFFORT
        if any(p.qos_profile.durability == DurabilityPolicy.VOLATILE for p in publishers):
            durability = DurabilityPolicy.VOLATILE
        if (reliability, durability) == (qos.reliability, qos.durability):
            return qos
        return QoSProfile(history=qos.history, depth=qos.depth, reliability=reliability, durability=durability)

    # --- messages in -------------------------------------------------------------------------
    def _on_message(self, topic: str, data: bytes, info: dict) -> None:
        if self.bag.closed:
            return
        try:
            if not self.bag.has_topic(topic):
                offered = [bag_qos(p.qos_profile) for p in self.get_publishers_info_by_topic(topic)]
                self.bag.add_topic(topic, self.recorded[topic].type_name, offered)
            self.bag.write(topic, info.get("received_timestamp") or time.time_ns(), data)
        except BagWriteError as exc:
            self.write_errors += 1
            self._warn_once(topic, str(exc))

    def _drain(self) -> int:
        """Write what already arrived but was not yet handed to a callback; returns the count."""
        drained = 0
        for topic, entry in list(self.recorded.items()):
            sub = entry.subscription
            if sub is None:
                continue
            with sub.handle:
                while (taken := sub.handle.take_message(sub.msg_type, sub.raw)) is not None:
                    self._on_message(topic, *taken)
                    drained += 1
        return drained

    # --- diagnostics and shutdown ------------------------------------------------------------
    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def idle(self) -> bool:
        """Nothing recorded but diagnostics (which include the recorder's own) for IDLE_WARNING_S."""
        return (time.monotonic() - self._started >= IDLE_WARNING_S
                and not any(n for topic, n in self.bag.counts.items() if topic != "/diagnostics"))

    def _warn_if_idle(self) -> None:
        if self.idle():
            self.get_logger().warning(
                f"nothing recorded but /diagnostics after {time.monotonic() - self._started:.0f} s: is anything "
                f"publishing? (waiting for {', '.join(t for t in self.wanted if t != '/diagnostics')})",
                throttle_duration_sec=30.0)

    def _diagnostic_report(self) -> tuple[dict, list[str]]:
        counts = self.bag.counts
        values = {"output": self.bag.path, "storage": self.params.storage, "state": "closed" if self.bag.closed
                  else "recording", "messages": sum(counts.values()), "bytes": self.bag.bytes_written,
                  "write_errors": self.write_errors, **{topic: counts[topic] for topic in self.wanted},
                  **{f"{topic} publishers": n for topic, n in self._matched.items()}}
        problems = [text for text, bad in ((f"{self.write_errors} write errors", self.write_errors),
                                           ("nothing recorded but /diagnostics", self.idle())) if bad]
        return values, problems

    def close_bag(self) -> None:
        """Drain until nothing has arrived for CLOSE_QUIET_S (at most CLOSE_MAX_S), then close."""
        if self.bag.closed:
            return
        drained, start = 0, time.monotonic()
        quiet_since = start
        while time.monotonic() - quiet_since < CLOSE_QUIET_S and time.monotonic() - start < CLOSE_MAX_S:
            taken = self._drain()
            if taken:
                drained += taken
                quiet_since = time.monotonic()
            else:
                time.sleep(0.01)
        self.bag.close()
        counts = ", ".join(f"{t} {n}" for t, n in sorted(self.bag.counts.items())) or "nothing"
        self.get_logger().info(f"closed {self.bag.path} ({drained} drained at shutdown): {counts}")

    def publish_safe_state(self) -> None:
        """Ctrl-C: drain, close the bag (metadata.yaml), report the final counts."""
        self.close_bag()
        self.diagnostics.publish()

    def destroy_node(self) -> None:
        if hasattr(self, "bag"):
            self.bag.close()  # shutdown without a live context: still leave a readable bag
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
