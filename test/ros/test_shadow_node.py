"""shadow_node over real DDS: scripted driver/policy streams with a known divergence give exactly the
expected events, clip windows and index lines; bad input is counted and the node keeps comparing;
Ctrl-C leaves a readable clip in the index; in sim-shadow nobody publishes a command on /drive and
the shadow node publishes no command at all (inspected from outside, in the ROS graph)."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image

from photon_msgs.msg import Divergence
from photon_policy.bags.reader import read_raw
from photon_policy.bags.typestore import photon_typestore
from photon_policy.launcher import start_node
from photon_policy.ros.images import image_message
from photon_policy.ros.stamps import seconds_from_stamp, stamp_from_seconds
from photon_policy.shadow.report import report

T0 = 50.0
DT = 0.02
PARAMS = dict(use_sim_time=False, pre_s=0.2, post_s=0.1, warmup_s=0.0, min_duration_s=0.1, close_duration_s=0.1,
              open_threshold=1.0, close_threshold=0.5, steering_scale=0.1, speed_scale=10.0, camera_timeout_s=0.5)
CAMERA, DRIVER, POLICY = "/camera/image_raw", "/teleop", "/policy/drive"


def command(stamp: float, steering: float, speed: float = 10.0) -> AckermannDriveStamped:
    msg = AckermannDriveStamped()
    msg.header.stamp = stamp_from_seconds(stamp)
    msg.drive.steering_angle, msg.drive.speed = float(steering), float(speed)
    return msg


class Streams:
    """The probe as camera, driver and policy: frame k at T0 + k * DT, each answered by both."""

    def __init__(self, probe) -> None:
        self.probe = probe
        self.camera = probe.publisher(Image, CAMERA, qos_profile_sensor_data)
        self.driver = probe.publisher(AckermannDriveStamped, DRIVER, QoSProfile(depth=100))
        self.policy = probe.publisher(AckermannDriveStamped, POLICY, QoSProfile(depth=100))
        self.diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        self.divergence = probe.subscribe(Divergence, "/shadow/divergence", QoSProfile(depth=1000))

    def wait_for_node(self) -> None:
        """Until the node's endpoints and its first diagnostics are seen here: by then discovery has
        run both ways, so the node's divergence writer knows the probe's reader (a volatile writer
        never sends what it published before it matched a reader)."""
        self.probe.wait_for(lambda: all(p.get_subscription_count() > 0 for p in (self.camera, self.driver,
                                                                                  self.policy)) and
                            self.divergence_publishers() and self.value("pairs") is not None,
                            30, "the shadow node's subscriptions and first diagnostics")

    def divergence_publishers(self) -> bool:
        return bool(self.probe.node.get_publishers_info_by_topic("/shadow/divergence"))

    def frame(self, k: int, policy_steering: float | None = 0.0, driver_steering: float | None = 0.0,
              camera: bool = True) -> float:
        t = round(T0 + k * DT, 6)
        if camera:
            self.camera.publish(image_message(np.full((8, 8, 3), k % 256, np.uint8), stamp_from_seconds(t), "cam"))
        if driver_steering is not None:
            self.driver.publish(command(t, driver_steering))
        if policy_steering is not None:
            self.policy.publish(command(t, policy_steering))
        self.probe.spin(0.01)
        return t

    def value(self, key: str) -> str | None:
        return self.values().get(key)

    def wait_value(self, key: str, expected, what: str, timeout: float = 10.0) -> None:
        self.probe.wait_for(lambda: self.value(key) is not None and expected(self.value(key)), timeout,
                            lambda: f"{what}; the node's last diagnostics: {self.values()}")

    def values(self) -> dict[str, str]:
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == "shadow: shadow":
                    return {kv.key: kv.value for kv in status.values}
        return {}

    def answered(self, frames: int) -> None:
        """Lockstep: wait until the node has published a divergence for each of `frames` frames.
        The node's reader may match the probe's writer a moment after the writer matched it (the
        first commands then arrive by retransmission, later than those of the other stream); a
        frame sent only after the previous one was answered keeps the two streams in step."""
        self.probe.wait_for(lambda: len(self.divergence) >= frames, 10,
                            lambda: f"a divergence for frame {frames - 1}; the node's last diagnostics: {self.values()}")


def index_lines(out) -> list[dict]:
    path = out / "index.jsonl"
    return [json.loads(s) for s in path.read_text().splitlines()] if path.is_file() else []


def stamps_in_bag(bag, topic: str) -> list[float]:
    raw, _, _ = read_raw(bag, {topic})
    store = photon_typestore()
    types = {CAMERA: "sensor_msgs/msg/Image", DRIVER: "ackermann_msgs/msg/AckermannDriveStamped",
             POLICY: "ackermann_msgs/msg/AckermannDriveStamped", "/shadow/divergence": "photon_msgs/msg/Divergence"}
    return sorted(round(seconds_from_stamp(store.deserialize_cdr(d, types[topic]).header.stamp), 6)
                  for _, d in raw.get(topic, []))


def test_known_divergence_gives_exactly_the_expected_events_clips_and_index(nodes, probe, tmp_path):
    out = tmp_path / "shadow"
    proc = nodes.start("sim-shadow", "shadow", output_dir=str(out), run_name="scripted", **PARAMS)
    streams = Streams(probe)
    streams.wait_for_node()
    # 0-19 agree; 20-34 the policy steers 0.3 rad more (score 3); 35-59 agree; 60-79 it diverges
    # again and the streams stop there: Ctrl-C cuts that event and its clip short.
    sent = []
    for k in range(80):
        sent.append(streams.frame(k, 0.3 if 20 <= k < 35 or k >= 60 else 0.0))
        streams.answered(k + 1)
    streams.wait_value("pairs", lambda v: int(v) == 80, f"80 pairs")
    probe.wait_for(lambda: len(index_lines(out)) == 1, 10, "the first event's index line")
    [first] = index_lines(out)
    assert (first["id"], first["closed_by"], first["samples"]) == (1, "score", 15)
    assert first["start"] == pytest.approx(sent[20]) and first["end"] == pytest.approx(sent[34])
    assert first["peak"] == pytest.approx(3.0, rel=1e-5) and first["mean"] == pytest.approx(3.0, rel=1e-5)
    assert first["clip_start"] == pytest.approx(sent[20] - 0.2) and first["clip_end"] == pytest.approx(sent[34] + 0.1)
    assert not first["truncated"] and not first["cut_short"] and first["missing_topics"] == [] and not first["error"]
    window = [t for t in sent if sent[20] - 0.2 - 1e-6 <= t <= sent[34] + 0.1 + 1e-6]  # frames 10..39
    bag = out / first["clip"]
    for topic in (CAMERA, DRIVER, POLICY, "/shadow/divergence"):
        assert stamps_in_bag(bag, topic) == window, topic
    # /shadow/divergence: one message per pair, in stamp order, with the open event's id.
    probe.wait_for(lambda: len(streams.divergence) == 80, 5, "80 divergence messages")
    assert [round(seconds_from_stamp(m.header.stamp), 6) for m in streams.divergence] == sent
    ids = [m.event_id for m in streams.divergence]
    assert ids[:25] == [0] * 25 and ids[25:35] == [1] * 10 and ids[40:60] == [0] * 20  # open once 0.1 s above
    assert streams.divergence[22].steering_error == pytest.approx(0.3) and streams.divergence[22].is_event is False

    assert nodes.interrupt(proc) == 0, nodes.log("shadow")
    lines = index_lines(out)
    assert len(lines) == 2
    second = lines[1]
    assert (second["id"], second["closed_by"], second["cut_short"]) == (2, "shutdown", True)
    assert second["start"] == pytest.approx(sent[60]) and second["end"] == pytest.approx(sent[79])
    assert stamps_in_bag(out / second["clip"], CAMERA) == [t for t in sent if t >= sent[60] - 0.2 - 1e-6]
    [drive] = [json.loads(s) for s in (out / "drives.jsonl").read_text().splitlines()]
    assert (drive["pairs"], drive["events"], drive["clips"]) == (80, 2, 2)
    summary = report(out, top=2)  # `photon shadow report` on what the node wrote
    assert summary.events == 2 and summary.minutes == pytest.approx(79 * DT / 60.0)
    assert summary.per_minute == pytest.approx(2 / (79 * DT / 60.0)) and summary.pairing_rate == 1.0
    assert [row["id"] for row in summary.top] == [1, 2] and all((out / "report" / f).is_file() for f in (
        "histogram.png", "timeline.png", "top_01.png", "top_02.png", "report.json"))


def test_bad_input_is_counted_and_the_node_keeps_comparing(nodes, probe, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    out = blocker / "shadow"  # cannot be created: every clip fails, and is counted
    nodes.start("sim-shadow", "shadow", output_dir=str(out), **{**PARAMS, "buffer_mb": 0.002})
    streams = Streams(probe)
    streams.wait_for_node()
    k = 0
    for _ in range(10):
        streams.frame(k)
        k += 1
    streams.frame(k - 1)                                   # duplicated stamps (a lockstep resend)
    streams.frame(k - 5)                                   # out of order
    streams.frame(k, policy_steering=math.nan, driver_steering=math.inf)  # NaN commands
    k += 1
    for _ in range(20):                                    # the driver's stream goes missing for 0.4 s
        streams.frame(k, driver_steering=None)
        k += 1
    streams.wait_value("unpaired_driver_stale", lambda v: int(v) >= 1, "commands without a driver counted")
    probe.spin(0.8)                                        # the camera stops
    streams.wait_value("camera_stops", lambda v: int(v) == 1, "the camera stop counted")
    k += 100                                               # 2 s later, commands without frames:
    for _ in range(40):                                    # an event longer than the buffer, with no camera
        streams.frame(k, policy_steering=0.5, camera=False)
        k += 1
    for _ in range(20):
        streams.frame(k, camera=False)
        k += 1
    for _ in range(20):
        streams.frame(k)
        k += 1
    streams.wait_value("clip_errors", lambda v: int(v) == 1, "the unwritable clip counted")
    for key, at_least in (("unpaired_policy_duplicate", 1), ("unpaired_policy_out_of_order", 1),
                          ("unpaired_policy_nan", 1), ("dropped_driver_nan", 1), ("dropped_driver_duplicate", 1),
                          ("dropped_driver_out_of_order", 1), ("unpaired_driver_stale", 5), ("index_errors", 1),
                          ("clips_truncated", 1), ("clips_missing_topics", 1), ("events", 1)):
        assert int(streams.value(key)) >= at_least, key
    pairs = int(streams.value("pairs"))
    streams.frame(k)                                       # still comparing
    streams.wait_value("pairs", lambda v: int(v) > pairs, "a pair after all of it")
    assert int(streams.value("buffer_bytes")) <= int(streams.value("buffer_cap_bytes"))
    assert "Traceback" not in nodes.log("shadow")


def test_in_sim_shadow_no_command_reaches_drive_and_the_shadow_node_publishes_none(probe, tmp_path):
    """The whole profile as `photon up` runs it; the graph is read from the probe's own process."""
    argv = [sys.executable, "-m", "photon_policy.cli", "up", "sim-shadow", "--set", "simulator.mode=lockstep",
            "--set", f"shadow.output_dir={tmp_path / 'shadow'}"]
    log = open(tmp_path / "up.log", "wb")
    up = start_node(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        streams = Streams(probe)
        streams.wait_value("pairs", lambda v: int(v) > 10, "the policy and the expert paired", timeout=120)
        names = {"simulator", "expert", "policy", "shadow"}
        # Data flowing does not mean the probe's graph has every node yet (DDS discovery is per participant).
        probe.wait_for(lambda: names <= set(probe.node.get_node_names()), 60, "the profile's nodes in the probe's graph")
        by_node = {name: dict(probe.node.get_publisher_names_and_types_by_node(name, "/")) for name in names}
        assert probe.node.get_publishers_info_by_topic("/drive") == []
        assert "/policy/drive" in by_node["policy"] and "/drive" not in by_node["policy"]
        commands = {t for t, types in by_node["shadow"].items()
                    if any(ty.startswith("ackermann_msgs/") for ty in types)}
        assert commands == set()
        assert set(by_node["shadow"]) <= {"/shadow/divergence", "/diagnostics", "/rosout", "/parameter_events"}
        assert by_node["shadow"]["/shadow/divergence"] == ["photon_msgs/msg/Divergence"]
    finally:
        up.send_signal(2)
        assert up.wait(timeout=60) == 0, (tmp_path / "up.log").read_text()[-3000:]
