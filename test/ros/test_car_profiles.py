"""The webcam profile end to end over real DDS: `photon up webcam` on a video file the test
writes; the camera node feeds the world model and the policy (shadow), whose commands answer
camera frames by stamp on /policy/drive, never on /drive; raw, and JPEG through
camera/image_raw/compressed (image_transport: compressed)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from photon_policy.launcher import start_node
from photon_policy.ros.images import decode_compressed


def diagnostics_values(box: list, name_part: str) -> dict[str, str]:
    for array in reversed(box):
        for status in array.status:
            if name_part in status.name:
                return {kv.key: kv.value for kv in status.values}
    return {}


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_photon_up_webcam_runs_the_policy_on_a_video_file(probe, tmp_path, transport):
    video = tmp_path / "street.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    rng = np.random.default_rng(0)
    for i in range(90):  # a moving pattern, so the policy sees change
        frame = np.roll(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) // 4 + 64, 8 * i, axis=1)
        writer.write(frame)
    writer.release()
    if transport == "raw":
        frames = probe.subscribe(Image, "/camera/image_raw", qos_profile_sensor_data)
    else:
        frames = probe.subscribe(CompressedImage, "/camera/image_raw/compressed", qos_profile_sensor_data)
    extra = [] if transport == "raw" else [
        "--set", "camera.publish_compressed=true", "--set", "policy.image_transport=compressed",
        "--set", "world_model.image_transport=compressed"]
    commands = probe.subscribe(AckermannDriveStamped, "/policy/drive")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    log = open(tmp_path / "photon.log", "wb")
    proc = start_node([sys.executable, "-m", "photon_policy.cli", "up", "webcam",
                       "--set", f"camera.video_device={video}", "--set", "camera.loop=true", *extra],
                      stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        def answered() -> int:
            stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in frames}
            return sum((c.header.stamp.sec, c.header.stamp.nanosec) in stamps for c in commands)

        probe.wait_for(lambda: answered() >= 20, 180, "20 policy commands answering camera frames by stamp")
        probe.wait_for(lambda: diagnostics_values(diags, "policy").get("inference_ms_p50", "nan") != "nan", 30,
                       "the policy's inference on camera frames")
        assert probe.node.count_publishers("/drive") == 0, "shadow mode never publishes /drive"
        probe.wait_for(lambda: probe.node.count_publishers("/world_model/prediction") == 1, 60, "the world model up")
        if transport == "raw":
            assert frames[0].width == 640 and frames[0].height == 480
        else:
            assert decode_compressed(frames[0]).shape == (480, 640, 3)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "photon.log").read_text(errors="replace")[-3000:]
