"""simulator_node over real DDS: interface, driving, stale and malformed commands, Ctrl-C, lockstep."""
from __future__ import annotations

import hashlib
import math
import time

import pytest
from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, Imu
from tf2_msgs.msg import TFMessage

from photon_msgs.msg import EpisodeStatus

LATCHED = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)

# topic -> (type, reliability) as documented in DESIGN.md and the node's docstring
PUBLISHED = {
    "/camera/image_raw": ("sensor_msgs/msg/Image", ReliabilityPolicy.BEST_EFFORT),
    "/camera/camera_info": ("sensor_msgs/msg/CameraInfo", ReliabilityPolicy.BEST_EFFORT),
    "/imu": ("sensor_msgs/msg/Imu", ReliabilityPolicy.BEST_EFFORT),
    "/odom": ("nav_msgs/msg/Odometry", ReliabilityPolicy.RELIABLE),
    "/tf": ("tf2_msgs/msg/TFMessage", ReliabilityPolicy.RELIABLE),
    "/tf_static": ("tf2_msgs/msg/TFMessage", ReliabilityPolicy.RELIABLE),
    "/clock": ("rosgraph_msgs/msg/Clock", ReliabilityPolicy.RELIABLE),
    "/sim/episode": ("photon_msgs/msg/EpisodeStatus", ReliabilityPolicy.RELIABLE),
    "/sim/track": ("nav_msgs/msg/Path", ReliabilityPolicy.RELIABLE),
    "/diagnostics": ("diagnostic_msgs/msg/DiagnosticArray", ReliabilityPolicy.RELIABLE),
}


def _command(probe, stamp=None, steering=0.0, speed=0.0) -> AckermannDriveStamped:
    msg = AckermannDriveStamped()
    msg.header.stamp = stamp or probe.node.get_clock().now().to_msg()
    msg.drive.steering_angle = steering
    msg.drive.speed = speed
    return msg


def _diag_values(diags: list[DiagnosticArray]) -> dict[str, str]:
    for array in reversed(diags):
        for status in array.status:
            if status.name.endswith("vehicle"):
                return {kv.key: kv.value for kv in status.values}
    return {}


def _drive_for(probe, pub, seconds, **cmd) -> None:
    """Publish a command at ~50 Hz for `seconds` while spinning."""
    for _ in range(int(seconds * 50)):
        pub.publish(_command(probe, **cmd))
        probe.spin(0.02)


def test_interface_topics_types_and_qos(nodes, probe):
    sim = nodes.start("sim", "simulator", remap={"drive": "/drive"})
    images = probe.subscribe(Image, "/camera/image_raw", qos_profile_sensor_data)
    infos = probe.subscribe(CameraInfo, "/camera/camera_info", qos_profile_sensor_data)
    imus = probe.subscribe(Imu, "/imu", qos_profile_sensor_data)
    statics = probe.subscribe(TFMessage, "/tf_static", LATCHED)
    probe.wait_for(lambda: images and infos and imus and statics, 20, "camera, imu and static tf")
    for topic, (type_name, reliability) in PUBLISHED.items():
        probe.wait_for(lambda: probe.node.get_publishers_info_by_topic(topic), 10, f"publisher on {topic}")
        [info] = probe.node.get_publishers_info_by_topic(topic)
        assert info.topic_type == type_name, topic
        assert info.qos_profile.reliability == reliability, topic
    [sub] = probe.node.get_subscriptions_info_by_topic("/drive")
    assert sub.topic_type == "ackermann_msgs/msg/AckermannDriveStamped"
    image = images[-1]
    assert (image.height, image.width, image.encoding, image.step) == (96, 96, "rgb8", 288)
    assert image.header.frame_id == "camera_optical_frame" and len(image.data) == 96 * 96 * 3
    assert infos[-1].k[0] > 0 and infos[-1].header.frame_id == "camera_optical_frame"
    assert imus[-1].linear_acceleration.z == pytest.approx(9.80665)
    chain = {(t.header.frame_id, t.child_frame_id) for t in statics[-1].transforms}
    assert chain == {("base_link", "camera_link"), ("camera_link", "camera_optical_frame")}
    assert sim.poll() is None


def test_drive_command_moves_the_car_and_stale_command_brakes(nodes, probe):
    nodes.start("sim", "simulator", remap={"drive": "/drive"})
    odom = probe.subscribe(Odometry, "/odom")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    pub = probe.publisher(AckermannDriveStamped, "/drive")
    probe.wait_for(lambda: odom and pub.get_subscription_count() > 0, 20, "simulator up")
    start = odom[-1].pose.pose.position
    _drive_for(probe, pub, 2.0, speed=25.0)
    moving = odom[-1]
    assert moving.twist.twist.linear.x > 15.0
    assert math.hypot(moving.pose.pose.position.x - start.x, moving.pose.pose.position.y - start.y) > 10.0
    # The driver goes silent: after 200 ms the simulator brakes the car on its own.
    probe.wait_for(lambda: odom[-1].twist.twist.linear.x < moving.twist.twist.linear.x - 10.0, 10, "braking")
    probe.wait_for(lambda: int(_diag_values(diags).get("stale_ticks", 0)) > 0, 3, "stale ticks in diagnostics")


def test_malformed_commands_are_counted_and_survived(nodes, probe):
    sim = nodes.start("sim", "simulator", remap={"drive": "/drive"})
    odom = probe.subscribe(Odometry, "/odom")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    pub = probe.publisher(AckermannDriveStamped, "/drive")
    probe.wait_for(lambda: odom and pub.get_subscription_count() > 0, 20, "simulator up")
    _drive_for(probe, pub, 1.0, speed=25.0)
    fast = odom[-1].twist.twist.linear.x
    # The simulator takes the newest command per step (depth 1): on a loaded machine it may see few
    # of a burst, so each bad command is sent until the simulator has counted five of its kind.
    for bad, counter in (({"steering": math.nan, "speed": 25.0}, "steering_angle_nonfinite"),
                         ({"steering": 0.0, "speed": math.inf}, "speed_nonfinite"),
                         ({"steering": 3.0, "speed": 1e9}, "steering_angle_out_of_range"),
                         ({"steering": -math.inf, "speed": -40.0}, "speed_out_of_range")):
        start = int(_diag_values(diags).get(counter, 0))
        end = time.monotonic() + 30.0
        while int(_diag_values(diags).get(counter, 0)) < start + 5:
            assert time.monotonic() < end, f"{bad} not counted as {counter}: {_diag_values(diags)}"
            _drive_for(probe, pub, 0.1, **bad)
    # A non-finite speed means stop: the car is now slower than before the bad commands.
    _drive_for(probe, pub, 0.5, steering=0.0, speed=math.nan)
    assert odom[-1].twist.twist.linear.x < fast
    values = _diag_values(diags)
    for key in ("steering_angle_nonfinite", "steering_angle_out_of_range", "speed_out_of_range"):
        assert int(values[key]) >= 5, key
    assert "drive command" in nodes.log("simulator")  # logged, with a throttle
    assert sim.poll() is None
    assert all(math.isfinite(o.pose.pose.position.x) and math.isfinite(o.twist.twist.linear.x) for o in odom)


def test_bad_parameter_value_is_named(nodes):
    sim = nodes.start("sim", "simulator", mode="warp")
    assert sim.wait(timeout=20) == 2
    assert "mode 'warp'" in nodes.log("simulator")


def test_ctrl_c_publishes_final_status(nodes, probe):
    sim = nodes.start("sim", "simulator", remap={"drive": "/drive"})
    status = probe.subscribe(EpisodeStatus, "/sim/episode", QoSProfile(depth=100))
    probe.wait_for(lambda: status, 20, "episode status")
    assert nodes.interrupt(sim) == 0
    probe.wait_for(lambda: status[-1].reason == "shutdown", 5, "the shutdown status")
    assert status[-1].done


def _lockstep_run(nodes, probe, seed: int, steps: int) -> tuple[list, list, float]:
    """Drive a lockstep simulator with a scripted command per frame; returns poses, image hashes, score."""
    sim = nodes.start("sim", "simulator", remap={"drive": "/scripted"}, mode="lockstep", seeds=str(seed),
                      repeat=False, max_steps=steps)
    pub = probe.publisher(AckermannDriveStamped, "/scripted")
    poses, hashes, scores = {}, {}, []

    def on_odom(msg: Odometry) -> None:
        stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        k = list(poses).index(stamp) if stamp in poses else len(poses)  # a resent frame gets the same command
        poses[stamp] = (msg.pose.pose.position.x, msg.pose.pose.position.y, msg.pose.pose.orientation.z)
        pub.publish(_command(probe, stamp=msg.header.stamp, steering=0.3 * math.sin(k / 15.0),
                             speed=20.0 + 10.0 * math.sin(k / 40.0)))

    subs = [probe.node.create_subscription(Odometry, "/odom", on_odom, 10),
            probe.node.create_subscription(Image, "/camera/image_raw",
                                           lambda m: hashes.__setitem__((m.header.stamp.sec, m.header.stamp.nanosec),
                                                                        hashlib.sha1(bytes(m.data)).hexdigest()),
                                           qos_profile_sensor_data),
            probe.node.create_subscription(EpisodeStatus, "/sim/episode",
                                           lambda m: scores.append(m.score) if m.done else None, 100)]
    probe.wait_for(lambda: scores, 60, "the lockstep episode to finish")
    assert sim.wait(timeout=10) == 0  # repeat=false: the simulator ends after its last seed
    for s in subs:
        probe.node.destroy_subscription(s)
    probe.node.destroy_publisher(pub)
    return list(poses.items()), hashes, scores[0]


def test_lockstep_is_deterministic(nodes, probe):
    first = _lockstep_run(nodes, probe, seed=5, steps=150)
    second = _lockstep_run(nodes, probe, seed=5, steps=150)
    assert len(first[0]) >= 150
    assert first[0][:150] == second[0][:150]  # same frames, same poses, to the last bit
    common = set(first[1]) & set(second[1])
    assert len(common) >= 100 and all(first[1][k] == second[1][k] for k in common)
    assert first[2] == second[2]
