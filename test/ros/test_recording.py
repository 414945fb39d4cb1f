"""Recording over real DDS: `collect` one simulated episode into a bag; the recorder closes its bag on Ctrl-C."""
from __future__ import annotations

import signal
import subprocess

import numpy as np
import yaml
from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from rosbags.interfaces import QosDurability, QosReliability
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import Image

from photon_policy.bags.collect import collect, recorder_profile
from photon_policy.bags.reader import read_episode
from photon_policy.profiles import node_command

SEED = 1000
STEPS = 60


def test_collect_records_one_episode_frame_for_frame(tmp_path):
    [bag] = collect(tmp_path / "bags", [SEED], noise_std=0.05, max_steps=STEPS, progress=False,
                    log_dir=tmp_path / "logs")
    assert bag == tmp_path / "bags" / "ep_s1000_n0.05"
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == "mcap" and info["relative_file_paths"][0].endswith(".mcap")

    result = read_episode(bag)
    ep = result.arrays
    assert ep.seed == SEED and (result.final_step, result.final_reason) == (STEPS, "time_limit")
    assert len(ep) == STEPS + 1                      # the reset frame + one per step: nothing dropped
    assert not ep.segments.any() and result.warnings == []
    np.testing.assert_allclose(np.diff(ep.stamps), 0.02, atol=1e-9)
    assert ep.frames.shape == (STEPS + 1, 96, 96, 3) and ep.frames.std() > 0
    assert (ep.commands[2:, 1] > 1.0).all()          # the expert drives off at once
    # With noise (DART): the car executed the noisy command (/drive); the labels (/teleop) are the
    # expert's clean commands for the same frames, at the same speed.
    np.testing.assert_array_equal(ep.commands[:, 1], ep.teleop[:, 1])
    assert 0.0 < np.abs(ep.commands[:, 0] - ep.teleop[:, 0]).max() < 0.4
    assert ep.odom[-1, 0] > 1.0 and np.abs(ep.imu).sum() > 0

    with Reader(bag) as reader:  # each topic carries its publisher's QoS, as ros2 bag record writes it
        qos = {c.topic: c.ext.offered_qos_profiles[0] for c in reader.connections}
    assert qos["/camera/image_raw"].reliability == QosReliability.BEST_EFFORT
    assert qos["/sim/track"].durability == QosDurability.TRANSIENT_LOCAL
    assert qos["/teleop"].reliability == QosReliability.RELIABLE and "/drive" in qos


def _recorder_reports(diagnostics, key: str) -> str | None:
    for array in reversed(diagnostics):
        for status in array.status:
            if status.name == "recorder: bag":
                return {kv.key: kv.value for kv in status.values}.get(key)
    return None


def test_recorder_closes_the_bag_on_ctrl_c(probe, tmp_path):
    bag = tmp_path / "bag"
    [spec] = recorder_profile(bag, ["/camera/image_raw", "/teleop"]).nodes
    log = open(tmp_path / "recorder.log", "wb")
    recorder = subprocess.Popen(node_command(spec), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        images = probe.publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
        teleop = probe.publisher(AckermannDriveStamped, "/teleop")
        probe.wait_for(lambda: _recorder_reports(diagnostics, "/camera/image_raw publishers") == "1" and
                       _recorder_reports(diagnostics, "/teleop publishers") == "1", 20, "the recorder to match")
        for k in range(5):
            frame = Image(height=2, width=3, encoding="bgr8", step=9, data=bytes([k, 0, 255]) * 6)
            frame.header.stamp.sec = 10 + k
            command = AckermannDriveStamped()
            command.header.stamp = frame.header.stamp
            command.drive.speed = float(k)
            images.publish(frame)
            teleop.publish(command)
            probe.spin(0.02)
        probe.wait_for(lambda: _recorder_reports(diagnostics, "/camera/image_raw") == "5", 10, "5 frames recorded")
        recorder.send_signal(signal.SIGINT)
        assert recorder.wait(timeout=10) == 0, (tmp_path / "recorder.log").read_text()
    finally:
        if recorder.poll() is None:
            recorder.kill()
    assert (bag / "metadata.yaml").is_file()
    result = read_episode(bag)
    np.testing.assert_array_equal(result.arrays.stamps, [10, 11, 12, 13, 14])
    assert (result.arrays.frames[:, 0, 0] == [[255, 0, k] for k in range(5)]).all()  # bgr8 -> RGB
    np.testing.assert_allclose(result.arrays.commands[:, 1], range(5))
