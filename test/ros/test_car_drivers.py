"""The real-car nodes over real DDS, without hardware: the camera node on a video file the test
writes, the joystick node on a named pipe fed with js_event records, the deadman through the
teleop and the mux to ackermann_cmd, and the mux's priorities, timeouts, locks and stops."""
from __future__ import annotations

import math
import os
import signal
import time

import cv2
import numpy as np
import pytest
import yaml
from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Joy
from std_msgs.msg import Bool
from tf2_msgs.msg import TFMessage

from photon_policy.drivers.joystick import JS_EVENT_AXIS, JS_EVENT_BUTTON, JS_EVENT_INIT, pack_event
from photon_policy.ros.images import decode_compressed, decode_image
from photon_policy.ros.stamps import seconds_from_stamp
from conftest import wait_until

LB, RB = 4, 5
MAX_STEERING, MAX_SPEED, MAX_REVERSE = 0.34, 2.0, 1.0  # config/vehicle.yaml


def diagnostics_values(box: list, name_part: str) -> dict[str, str]:
    """The newest /diagnostics status whose name contains name_part, as a dict (empty if none)."""
    for array in reversed(box):
        for status in array.status:
            if name_part in status.name:
                return {kv.key: kv.value for kv in status.values} | {"message": status.message}
    return {}


def write_video(path, frames: int, size=(640, 480)) -> None:
    """Frame i is a flat grey of level 40 + 2 i (MJPEG keeps flat greys within a level or two)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 40 + 2 * i, np.uint8))
    writer.release()


# --- camera ------------------------------------------------------------------------------------------
def test_camera_node_plays_a_video_file_with_capture_stamps_and_calibration(nodes, probe, tmp_path):
    video = tmp_path / "drive.avi"
    cal = tmp_path / "cal.yaml"
    cal.write_text(yaml.safe_dump({
        "image_width": 640, "image_height": 480, "camera_name": "front", "distortion_model": "plumb_bob",
        "camera_matrix": {"rows": 3, "cols": 3, "data": [510.0, 0, 321.0, 0, 505.0, 239.0, 0, 0, 1]},
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.1, -0.05, 0.0, 0.0, 0.0]},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
        "projection_matrix": {"rows": 3, "cols": 4, "data": [510.0, 0, 321.0, 0, 0, 505.0, 239.0, 0, 0, 0, 1, 0]}}))
    images = probe.subscribe(Image, "/camera/image_raw", qos_profile_sensor_data)
    infos = probe.subscribe(CameraInfo, "/camera/camera_info", qos_profile_sensor_data)
    compressed = probe.subscribe(CompressedImage, "/camera/image_raw/compressed", qos_profile_sensor_data)
    tf_static = probe.subscribe(TFMessage, "/tf_static", QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    # The file appears only once the probe has discovered the camera node (which retries the
    # missing file with backoff meanwhile), so discovery cannot eat the first frames.
    proc = nodes.start("car", "camera", video_device=str(video), framerate=30.0, loop=False,
                       camera_info_url=f"file://{cal}", publish_compressed=True)
    probe.wait_for(lambda: diagnostics_values(diags, "camera").get("source") == "unavailable", 60,
                   "the camera node up, waiting for its file")
    probe.wait_for(lambda: probe.node.count_publishers("/camera/image_raw") > 0
                   and probe.node.count_publishers("/camera/image_raw/compressed") > 0, 30, "discovery")
    probe.spin(0.5)
    write_video(tmp_path / "partial.avi", 60)
    started = time.time()
    (tmp_path / "partial.avi").rename(video)
    probe.wait_for(lambda: diagnostics_values(diags, "camera").get("source") == "ended", 60, "the video to end")
    probe.spin(0.3)
    assert proc.poll() is None, "the node stays up at the end of a file"
    # Best effort on a shared, busy machine may lose a frame; the node's own count is exact.
    assert len(images) >= 40, f"only {len(images)} of 60 frames arrived"
    stamps = [seconds_from_stamp(m.header.stamp) for m in images]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), f"stamps strictly increase: {stamps}"
    assert started < stamps[0] and stamps[-1] < time.time(), "stamps are capture times on this clock"
    levels = [float(decode_image(m).mean()) for m in images]
    assert all(b > a for a, b in zip(levels, levels[1:])), "frames arrive in file order"
    first = images[0]
    assert (first.width, first.height, first.encoding, first.header.frame_id) == (640, 480, "rgb8",
                                                                                   "camera_optical_frame")
    values = diagnostics_values(diags, "camera")
    assert values["frames"] == "60" and values["configured_rate_hz"] == "30.0" and values["calibrated"] == "True"
    assert "late" in values and "dropped" in values and "rate_hz" in values
    # camera_info: the calibration file's numbers, one per image, with the image's stamp.
    assert infos and list(infos[0].k) == [510.0, 0, 321.0, 0, 505.0, 239.0, 0, 0, 1]
    assert list(infos[0].d) == [0.1, -0.05, 0.0, 0.0, 0.0] and infos[0].distortion_model == "plumb_bob"
    assert {seconds_from_stamp(i.header.stamp) for i in infos} & set(stamps)
    # The compressed stream decodes to the same picture.
    assert compressed and decode_compressed(compressed[-1]).shape == (480, 640, 3)
    # The mount from vehicle.yaml: base_link -> camera_link -> camera_optical_frame.
    probe.wait_for(lambda: tf_static, 10, "/tf_static")
    chain = {(t.header.frame_id, t.child_frame_id): t for t in tf_static[0].transforms}
    assert set(chain) == {("base_link", "camera_link"), ("camera_link", "camera_optical_frame")}
    assert chain[("base_link", "camera_link")].transform.translation.x == pytest.approx(0.25)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_camera_node_counts_frames_over_the_transport_limit(nodes, probe, tmp_path, monkeypatch):
    """Issue 14, finding 10: frames bigger than the publisher's shared-memory segment may vanish under
    best effort without a trace at the subscriber; the camera node counts them and says so."""
    from test_drivers import SMALL_SHM_PROFILE  # a 256 KiB segment: a 640x480 rgb8 frame (900 KiB) exceeds it
    profile = tmp_path / "small_shm.xml"
    profile.write_text(SMALL_SHM_PROFILE)
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    video = tmp_path / "drive.avi"
    write_video(video, 10)
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    proc = nodes.start("car", "camera", video_device=str(video), framerate=10.0, loop=True)
    probe.wait_for(lambda: int(diagnostics_values(diags, "camera").get("frames_over_transport_limit", 0)) >= 3, 60,
                   lambda: f"frames over the limit counted; last diagnostics {diagnostics_values(diags, 'camera')}")
    values = diagnostics_values(diags, "camera")
    assert int(values["transport_limit_bytes"]) == 262144 and "transport limit" in values["message"]
    assert "exceed the 262144 B shared-memory segment" in nodes.log("camera")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_camera_node_survives_an_unknown_device_and_corrupt_frames(nodes, probe, tmp_path):
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    proc = nodes.start("car", "camera", video_device="/dev/video99")
    probe.wait_for(lambda: "no such device: /dev/video99" in diagnostics_values(diags, "camera").get("message", ""),
                   30, "the camera's diagnostics to name the missing device")
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert "no such device: /dev/video99" in nodes.log("camera")

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        if i == 2:
            (folder / f"{i:03d}.png").write_bytes(b"\x89PNG corrupt")
        else:  # one of another size: resized, counted
            size = (320, 240) if i == 4 else (640, 480)
            cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((size[1], size[0], 3), 100, np.uint8))
    images = probe.subscribe(Image, "/camera/image_raw", qos_profile_sensor_data)
    diags.clear()
    proc = nodes.start("car", "camera", video_device=str(folder), framerate=10.0, loop=True)
    probe.wait_for(lambda: int(diagnostics_values(diags, "camera").get("dropped_corrupt", 0)) >= 2, 60,
                   "corrupt frames counted")
    probe.wait_for(lambda: len(images) >= 5, 60, "frames from the folder")  # discovery may take a while
    values = diagnostics_values(diags, "camera")
    assert int(values["resized"]) >= 1 and "resized" in values["message"]
    assert all((m.width, m.height) == (640, 480) for m in images)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


# --- joystick -----------------------------------------------------------------------------------------
class Pad:
    """A joystick as the kernel presents it, written into a named pipe the joy node reads."""

    def __init__(self, path) -> None:
        self.path = str(path)
        os.mkfifo(self.path)
        self.fd: int | None = None

    def connect(self, timeout: float = 30.0) -> None:
        # The node opens its end non-blocking and retries; a non-blocking write-open succeeds once it has.
        def opened() -> bool:
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
                return True
            except OSError:
                return False
        wait_until(opened, timeout, "the joy node to open the pipe")
        os.set_blocking(self.fd, True)
        # What the driver sends on open: the initial state of every control.
        self.send(*[pack_event(JS_EVENT_AXIS | JS_EVENT_INIT, i, 0) for i in range(6)],
                  *[pack_event(JS_EVENT_BUTTON | JS_EVENT_INIT, i, 0) for i in range(11)])

    def send(self, *events: bytes) -> None:
        os.write(self.fd, b"".join(events))

    def axis(self, number: int, value: float) -> bytes:
        # Linux: stick up reads negative; joy_linux (and ours) negate it.
        return pack_event(JS_EVENT_AXIS, number, int(round(-value * 32767)))

    def button(self, number: int, pressed: bool) -> bytes:
        return pack_event(JS_EVENT_BUTTON, number, int(pressed))

    def disconnect(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def test_joy_node_reads_a_pipe_of_js_events_and_survives_disconnects(nodes, probe, tmp_path):
    pad = Pad(tmp_path / "js0")
    joys = probe.subscribe(Joy, "/joy")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    proc = nodes.start("car", "joy", dev=pad.path)
    pad.connect()
    pad.send(pad.button(LB, True), pad.axis(1, 0.5), pack_event(JS_EVENT_AXIS, 50, 1000))  # axis 50: unexpected
    probe.wait_for(lambda: joys and joys[-1].buttons[LB] == 1 and abs(joys[-1].axes[1] - 0.5) < 1e-3, 30,
                   "LB and axis 1 on /joy")
    assert len(joys[-1].axes) == 8 and len(joys[-1].buttons) == 12
    probe.wait_for(lambda: diagnostics_values(diags, "joystick").get("ignored_axis_out_of_range") == "1", 10,
                   "the unexpected axis counted")
    pad.disconnect()
    probe.wait_for(lambda: joys[-1].buttons[LB] == 0 and joys[-1].axes[1] == 0.0, 10, "everything released")
    probe.wait_for(lambda: diagnostics_values(diags, "joystick").get("connected") == "False", 10, "disconnect seen")
    assert proc.poll() is None
    pad.connect()
    pad.send(pad.button(RB, True))
    probe.wait_for(lambda: joys[-1].buttons[RB] == 1, 30, "RB after reconnecting")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    probe.wait_for(lambda: joys[-1].buttons[RB] == 0, 5, "the stopped joy node's last word: every button released")
    pad.disconnect()


# --- deadman: joystick -> teleop -> mux -> ackermann_cmd ---------------------------------------------
def command(speed: float, steering: float = 0.0) -> AckermannDriveStamped:
    msg = AckermannDriveStamped()
    msg.drive.speed, msg.drive.steering_angle = float(speed), float(steering)
    return msg


class Pump:
    """The probe's periodic publishers (20 Hz) while it waits for conditions."""

    def __init__(self, probe) -> None:
        self.probe = probe
        self.sources: dict[str, tuple] = {}

    def set(self, topic: str, msg_type, msg) -> None:
        if msg is None:
            self.sources.pop(topic, None)
            return
        pub = self.sources[topic][0] if topic in self.sources else self.probe.publisher(msg_type, topic)
        self.sources[topic] = (pub, msg)

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline, next_pub = time.monotonic() + timeout, 0.0
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            if time.monotonic() >= next_pub:
                for pub, msg in self.sources.values():
                    if hasattr(msg, "header"):
                        msg.header.stamp = self.probe.node.get_clock().now().to_msg()
                    pub.publish(msg)
                next_pub = time.monotonic() + 0.05
            self.probe.executor.spin_once(timeout_sec=0.01)

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.wait_for(lambda: time.monotonic() > end, seconds + 1.0, "time")


def assert_safe(cmds: list[AckermannDriveStamped]) -> None:
    """Every command finite and within config/vehicle.yaml's limits (as float32, the wire's type)."""
    def f32(x: float) -> float:
        return float(np.float32(x))

    for m in cmds:
        s, v = m.drive.steering_angle, m.drive.speed
        assert all(math.isfinite(x) for x in (s, v, m.drive.steering_angle_velocity, m.drive.acceleration,
                                              m.drive.jerk)), m
        assert abs(s) <= f32(MAX_STEERING) and -f32(MAX_REVERSE) <= v <= f32(MAX_SPEED), m


def test_deadman_press_release_rb_disconnect_and_a_dead_teleop(nodes, probe, tmp_path):
    pad = Pad(tmp_path / "js0")
    cmds = probe.subscribe(AckermannDriveStamped, "/ackermann_cmd")
    teleop = probe.subscribe(AckermannDriveStamped, "/teleop")
    pump = Pump(probe)
    pump.set("/drive", AckermannDriveStamped, command(1.5, 0.1))  # autonomy asks for 1.5 m/s all along
    nodes.start("car", "joy", dev=pad.path)
    teleop_proc = nodes.start("car", "joy_teleop")
    mux_proc = nodes.start("car", "ackermann_mux")
    pad.connect()
    # Nothing held: zeros from the teleop win over /drive.
    pump.wait_for(lambda: len(teleop) >= 5 and cmds, 60, "zeros on /teleop and the mux up")
    n = len(cmds)
    pump.run(0.3)
    assert all(m.drive.speed == 0.0 for m in cmds[n:]), "no button: zero, never /drive"
    # LB + half stick forward, full left: drive by hand.
    pad.send(pad.button(LB, True), pad.axis(1, 0.5), pad.axis(2, 1.0))
    pump.wait_for(lambda: cmds[-1].drive.speed == pytest.approx(0.5, abs=1e-3), 30, "the stick's speed on ackermann_cmd")
    assert cmds[-1].drive.steering_angle == pytest.approx(0.34)
    # Release LB: zero at once.
    pad.send(pad.button(LB, False))
    pump.wait_for(lambda: cmds[-1].drive.speed == 0.0, 10, "zero after releasing LB")
    # RB: autonomy's command reaches the motors once /teleop has gone stale.
    pad.send(pad.button(RB, True))
    pump.wait_for(lambda: cmds[-1].drive.speed == pytest.approx(1.5), 10, "/drive through the mux with RB")
    # The joystick disconnects while RB is held: zero, and /drive stays out.
    pad.disconnect()
    pump.wait_for(lambda: cmds[-1].drive.speed == 0.0, 10, "zero after the joystick disconnected")
    n = len(cmds)
    pump.run(0.5)
    assert all(m.drive.speed == 0.0 for m in cmds[n:])
    # Reconnect, hold RB, then kill the teleop (SIGTERM): its lock goes silent, /drive is locked out.
    pad.connect()
    pad.send(pad.button(RB, True))
    pump.wait_for(lambda: cmds[-1].drive.speed == pytest.approx(1.5), 30, "autonomy again with RB")
    teleop_proc.send_signal(signal.SIGTERM)
    assert teleop_proc.wait(timeout=15) == 0
    n = len(teleop)
    pump.wait_for(lambda: len(teleop) > n or teleop[-1].drive.speed == 0.0, 5, "the teleop's last word")
    assert teleop[-1].drive.speed == 0.0, "the teleop's last word is zero"
    pump.wait_for(lambda: cmds[-1].drive.speed == 0.0, 10, "stop once the teleop is gone")
    n = len(cmds)
    pump.run(0.5)
    assert len(cmds) > n and all(m.drive.speed == 0.0 for m in cmds[n:]), "a dead teleop never hands over"
    mux_proc.send_signal(signal.SIGTERM)
    assert mux_proc.wait(timeout=15) == 0
    probe.spin(0.3)  # the mux delivered its last word before exiting; take it
    assert cmds[-1].drive.speed == 0.0 and cmds[-1].drive.steering_angle == 0.0
    assert_safe(cmds)
    pad.disconnect()


# --- mux --------------------------------------------------------------------------------------------
def test_mux_priorities_timeouts_locks_refusals_and_stop_on_stale(nodes, probe):
    cmds = probe.subscribe(AckermannDriveStamped, "/ackermann_cmd")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    pump = Pump(probe)
    proc = nodes.start("car", "ackermann_mux")
    # No input at all: stops, repeatedly.
    pump.wait_for(lambda: len(cmds) >= 3, 60, "stops from a mux with no input")
    assert all(m.drive.speed == 0.0 for m in cmds)
    # Autonomy, unlocked by the deadman lock.
    pump.set("/autonomy_lock", Bool, Bool(data=False))
    pump.set("/drive", AckermannDriveStamped, command(1.0, 0.1))
    pump.wait_for(lambda: cmds[-1].drive.speed == 1.0, 10, "/drive forwarded")
    # Teleop outranks it.
    pump.set("/teleop", AckermannDriveStamped, command(0.3))
    pump.wait_for(lambda: cmds[-1].drive.speed == pytest.approx(0.3), 10, "/teleop forwarded")
    n = len(cmds)
    pump.run(0.5)
    assert all(m.drive.speed == pytest.approx(0.3) for m in cmds[n:]), "/drive never interleaves"
    # Teleop goes quiet: after its timeout, autonomy again.
    pump.set("/teleop", None, None)
    pump.wait_for(lambda: cmds[-1].drive.speed == 1.0, 10, "/drive after /teleop timed out")
    # Lock engaged: stops although /drive is fresh.
    pump.set("/autonomy_lock", Bool, Bool(data=True))
    pump.wait_for(lambda: cmds[-1].drive.speed == 0.0, 10, "stop while locked")
    n = len(cmds)
    pump.run(0.3)
    assert all(m.drive.speed == 0.0 for m in cmds[n:])
    # Bad commands on either input: never forwarded, a stop instead.
    pump.set("/autonomy_lock", Bool, Bool(data=False))
    nan_accel = command(1.0)
    nan_accel.drive.acceleration = math.nan
    for bad in (command(math.nan), command(1.0, math.inf), command(5.0), command(0.5, 1.0), command(-3.0), nan_accel):
        pump.set("/drive", AckermannDriveStamped, command(1.0, 0.1))
        pump.wait_for(lambda: cmds[-1].drive.speed == 1.0, 10, "/drive forwarded")
        pump.set("/drive", AckermannDriveStamped, bad)
        pump.wait_for(lambda: cmds[-1].drive.speed == 0.0, 10, f"a stop for {bad.drive}")
    pump.set("/drive", None, None)
    pump.set("/teleop", AckermannDriveStamped, command(math.nan))
    pump.wait_for(lambda: int(diagnostics_values(diags, "mux").get("refused joystick:nonfinite", 0)) > 0, 10,
                  "the refused teleop message counted")
    # Everything stale: stops keep coming.
    pump.set("/teleop", None, None)
    pump.set("/autonomy_lock", None, None)
    n = len(cmds)
    pump.wait_for(lambda: len(cmds) >= n + 5, 10, "stops with every input stale")
    assert all(m.drive.speed == 0.0 for m in cmds[n:])
    values = diagnostics_values(diags, "mux")
    probe.wait_for(lambda: diagnostics_values(diags, "mux").get("active_input") == "none (stop)", 10, "no input")
    values = diagnostics_values(diags, "mux")
    assert int(values["switches"]) >= 4 and int(values["refused"]) >= 7
    assert int(values["switches joystick->navigation"]) >= 1
    assert_safe(cmds)
    pump.set("/drive", AckermannDriveStamped, command(1.0))  # a fresh input, then SIGTERM:
    pump.set("/autonomy_lock", Bool, Bool(data=False))
    pump.wait_for(lambda: cmds[-1].drive.speed == 1.0, 10, "/drive forwarded")
    pump.set("/drive", None, None)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    probe.spin(0.3)
    assert cmds[-1].drive.speed == 0.0, "the mux's last word is a stop"


def test_joy_node_reports_an_unknown_device_and_keeps_trying(nodes, probe, tmp_path):
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    proc = nodes.start("car", "joy", dev=str(tmp_path / "js7"))
    probe.wait_for(lambda: "cannot open" in diagnostics_values(diags, "joystick").get("message", ""), 30,
                   "the joystick's diagnostics to name the missing device")
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_keyboard_teleop_arrows_to_teleop_and_a_stop_on_sigterm(probe, tmp_path):
    import subprocess
    import sys

    from photon_policy.launcher import start_node
    from photon_policy.paths import config_dir

    teleop = probe.subscribe(AckermannDriveStamped, "/teleop")
    argv = [sys.executable, "-c", "import sys, photon_policy.drivers.keyboard_teleop_node as m; sys.exit(m.main())",
            "--ros-args", "--params-file", str(config_dir() / "vehicle.yaml"), "-p", "speed_step:=0.25"]
    proc = start_node(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                      stderr=open(tmp_path / "keyboard.log", "wb"))
    probe.wait_for(lambda: teleop, 60, "keyboard teleop up")
    proc.stdin.write(b"\x1b[A\x1b[A\x1b[D")  # up, up, left
    proc.stdin.flush()
    probe.wait_for(lambda: teleop[-1].drive.speed == 0.5, 10, "two speed steps")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    probe.wait_for(lambda: teleop[-1].drive.speed == 0.0, 5, "a stop as the keyboard teleop's last word")
    proc.stdin.close()
