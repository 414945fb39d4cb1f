"""`photon play` as a real process over DDS: a probe receives exactly what the rosbags reader reads
from the bag (topics, order, bytes), with the recorded QoS, under a remapped name; a node on
use_sim_time follows the bag's clock; a pause parameter holds playback; Ctrl-C ends a loop cleanly."""
from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from ackermann_msgs.msg import AckermannDriveStamped
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import Image, Imu
from builtin_interfaces.msg import Time
from rclpy.serialization import serialize_message

from photon_policy.bags.recorder import INFINITE, BagWriter
from photon_policy.bags.typestore import new_typestore
from photon_policy.launcher import start_node

NS = 1_000_000_000
ORIGIN = 1_700_000_000 * NS  # a car's clock, not the simulator's 0
FRAMES = 25                   # 0.5 s at 50 Hz
PHOTON = str(Path(sys.executable).parent / "photon")


def _qos(reliability: QosReliability) -> Qos:
    return Qos(QosHistory.KEEP_LAST, 50, reliability, QosDurability.VOLATILE, INFINITE, INFINITE,
               QosLiveliness.AUTOMATIC, INFINITE, False)


def write_bag(path: Path, storage: str = "mcap") -> None:
    """A foreign-looking bag: camera on /cam/image (reliable), /imu (best effort), /teleop, and a
    message type nobody here has installed. Serialized by rclpy (the Gadget by rosbags)."""
    store = new_typestore(**{"foreign_msgs/msg/Gadget": "float64 x"})
    gadget = store.types["foreign_msgs/msg/Gadget"]
    rng = np.random.default_rng(0)
    with BagWriter(path, storage, typestore=store) as bag:
        bag.add_topic("/cam/image", "sensor_msgs/msg/Image", [_qos(QosReliability.RELIABLE)])
        bag.add_topic("/imu", "sensor_msgs/msg/Imu", [_qos(QosReliability.BEST_EFFORT)])
        bag.add_topic("/teleop", "ackermann_msgs/msg/AckermannDriveStamped", [_qos(QosReliability.RELIABLE)])
        bag.add_topic("/gadget", "foreign_msgs/msg/Gadget")
        for k in range(FRAMES):
            t = ORIGIN + k * 20_000_000
            stamp = Time(sec=t // NS, nanosec=t % NS)
            image = Image(height=8, width=6, encoding="bgr8", step=18, data=rng.integers(0, 256, 144).tobytes())
            image.header.stamp = stamp
            bag.write("/cam/image", t, serialize_message(image))
            imu = Imu()
            imu.header.stamp, imu.angular_velocity.z = stamp, 0.1 * k
            bag.write("/imu", t + 1_000_000, serialize_message(imu))
            if k % 5 == 0:
                drive = AckermannDriveStamped()
                drive.header.stamp, drive.drive.steering_angle, drive.drive.speed = stamp, 0.01 * k, 2.0
                bag.write("/teleop", t + 2_000_000, serialize_message(drive))
                bag.write("/gadget", t + 3_000_000, store.serialize_cdr(gadget(x=float(k)), "foreign_msgs/msg/Gadget"))


def bag_contents(path: Path) -> dict[str, list[bytes]]:
    """topic -> CDR bytes in the bag's order, as rosbags' Reader reads them."""
    out: dict[str, list[bytes]] = {}
    with Reader(path) as reader:
        for connection, _, data in reader.messages():
            out.setdefault(connection.topic, []).append(bytes(data))
    return out


def set_paused(probe, paused: bool) -> None:
    client = probe.node.create_client(SetParameters, "/player/set_parameters")
    probe.wait_for(client.service_is_ready, 20, "the player's parameter service")
    value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=paused)
    future = client.call_async(SetParameters.Request(parameters=[ParameterMsg(name="paused", value=value)]))
    probe.wait_for(future.done, 10, "the answer to `paused`")
    assert future.result().results[0].successful


def start_player(tmp_path: Path, *args: str, stdin: int | None = None) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "player.log"
    proc = start_node([PHOTON, "play", *args], stdout=open(log, "wb"), stderr=subprocess.STDOUT, stdin=stdin)
    return proc, log


def test_play_publishes_what_the_bag_holds_with_its_qos_and_clock(probe, tmp_path):
    bag = tmp_path / "bag"
    write_bag(bag)
    expected = bag_contents(bag)
    arrived: list[tuple[str, bytes]] = []
    deep_reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    deep_best_effort = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT)
    subscriptions = {}
    for topic, cls, qos in (("/camera/image_raw", Image, deep_reliable), ("/teleop", AckermannDriveStamped,
                                                                          deep_reliable),
                            ("/imu", Imu, deep_best_effort)):
        subscriptions[topic] = probe.node.create_subscription(
            cls, topic, lambda data, t=topic: arrived.append((t, data)), qos, raw=True)
    sim_node = Node("sim_time_probe", context=probe.context, parameter_overrides=[Parameter("use_sim_time",
                                                                                          value=True)])
    probe.executor.add_node(sim_node)

    player, log = start_player(tmp_path, str(bag), "--remap", "/cam/image:=/camera/image_raw", "--clock", "100",
                               "--start-paused", "--wait-for-subscribers", "30")
    try:
        # Paused, the player already publishes the bag's first instant on /clock: the sim-time
        # node reads it, and our subscriptions have matched the player's writers (both ways:
        # the player waits for its subscribers before it plays).
        probe.wait_for(lambda: sim_node.get_clock().now().nanoseconds >= ORIGIN and
                       all(s.get_publisher_count() >= 1 for s in subscriptions.values()), 40,
                       lambda: f"the sim-time node at the bag's clock (it reads {sim_node.get_clock().now()}), "
                               f"publishers {[s.get_publisher_count() for s in subscriptions.values()]}; "
                               f"player log: {log.read_text()}")
        assert sim_node.get_clock().now().nanoseconds < ORIGIN + 20_000_000  # paused: the bag's start
        assert not arrived, "the player published while paused"
        qos = {t: probe.node.get_publishers_info_by_topic(t)[0].qos_profile.reliability
               for t in ("/camera/image_raw", "/imu", "/teleop")}
        assert qos == {"/camera/image_raw": ReliabilityPolicy.RELIABLE, "/imu": ReliabilityPolicy.BEST_EFFORT,
                       "/teleop": ReliabilityPolicy.RELIABLE}
        assert not probe.node.get_publishers_info_by_topic("/cam/image")  # remapped away

        set_paused(probe, False)
        probe.wait_for(lambda: player.poll() is not None, 30, lambda: f"the player to finish: {log.read_text()}")
        # Reliable messages were acknowledged before it exited: they are here, or in our reader's queue.
        def counts() -> dict[str, int]:
            return {t: sum(1 for topic, _ in arrived if topic == t) for t in ("/camera/image_raw", "/teleop")}

        probe.wait_for(lambda: counts() == {"/camera/image_raw": FRAMES, "/teleop": FRAMES // 5}, 10,
                       lambda: f"every reliable message (got {counts()}); player log: {log.read_text()}")
    finally:
        if player.poll() is None:
            player.send_signal(signal.SIGINT)
            player.wait(10)
    output = log.read_text()
    assert player.returncode == 0, output

    got: dict[str, list[bytes]] = {}
    for topic, data in arrived:
        got.setdefault(topic, []).append(data)
    # The reliable topics: every message, in the bag's order, byte for byte (nothing re-serialized).
    assert got["/camera/image_raw"] == expected["/cam/image"]
    assert got["/teleop"] == expected["/teleop"]
    # Best effort may lose a message on a loaded machine; what came is the bag's, in order.
    imu = iter(expected["/imu"])
    assert len(got["/imu"]) > FRAMES // 2 and all(any(d == e for e in imu) for d in got["/imu"])
    # The sim-time node followed the bag to its end.
    assert sim_node.get_clock().now().nanoseconds >= ORIGIN + (FRAMES - 1) * 20_000_000, output
    assert ("skipped /gadget (foreign_msgs/msg/Gadget, 5 messages): message type foreign_msgs/msg/Gadget "
            "is not installed here") in output
    assert "done: 55 messages on 3 topic(s)" in output, output  # timing is the benchmark's job
    sim_node.destroy_node()


def test_space_resumes_and_ctrl_c_ends_a_looping_player_with_its_report(probe, tmp_path):
    bag = tmp_path / "bag"
    write_bag(bag, "sqlite3")
    frames = []
    sub = probe.node.create_subscription(Image, "/cam/image", frames.append, QoSProfile(depth=100), raw=True)
    terminal, player_side = pty.openpty()  # the player's stdin is a terminal: the space bar toggles pause
    player, log = start_player(tmp_path, str(bag), "--loop", "--rate", "4", "--topics", "/cam/image",
                               "--start-paused", "--wait-for-subscribers", "30", stdin=player_side)
    os.close(player_side)
    try:
        probe.wait_for(lambda: "paused: press space" in log.read_text(), 30, lambda: f"the player: {log.read_text()}")
        assert not frames
        os.write(terminal, b" ")
        probe.wait_for(lambda: len(frames) > FRAMES, 40, lambda: f"a second loop (got {len(frames)} frames, "
                                                                 f"{sub.get_publisher_count()} publishers): "
                                                                 f"{log.read_text()}")
        player.send_signal(signal.SIGINT)
        code = player.wait(15)
    finally:
        os.close(terminal)
        if player.poll() is None:
            player.kill()
            player.wait()
    output = log.read_text()
    assert code == 0 and "[photon] playing\n" in output and "stopped:" in output and "asked 4" in output, output
    assert "skipped /imu (sensor_msgs/msg/Imu, 25 messages): not in --topics" in output
