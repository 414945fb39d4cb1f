"""The real-car cores without ROS: js_event parsing, the deadman, the mux's choices, keyboard keys,
camera sources and calibration files."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import yaml

from photon_policy.drivers.calibration import CalibrationError, load_calibration
from photon_policy.drivers.camera_source import BadFrame, SourceError, SourceLost, check_frame, open_source
from photon_policy.drivers.joystick import JS_EVENT_AXIS, JS_EVENT_BUTTON, JS_EVENT_INIT, JoystickState, pack_event
from photon_policy.drivers.keyboard import KeyboardConfig, KeyboardTeleop, parse_keys
from photon_policy.drivers.mux import MuxCore, Source, sources_from_parameters
from photon_policy.drivers.teleop import AUTONOMOUS, MANUAL, STOP, Deadman, TeleopConfig
from photon_policy.drivers.vehicle import CameraMount, VehicleLimits, quaternion_from_rpy

LIMITS = VehicleLimits(max_steering_angle=0.34, max_speed=2.0, max_reverse_speed=1.0)


# --- joystick -------------------------------------------------------------------------------------
def test_js_events_become_axes_and_buttons_even_split_across_reads():
    js = JoystickState(max_axes=4, max_buttons=6)
    data = (pack_event(JS_EVENT_BUTTON | JS_EVENT_INIT, 4, 0) + pack_event(JS_EVENT_AXIS, 1, -32767)
            + pack_event(JS_EVENT_BUTTON, 4, 1) + pack_event(JS_EVENT_AXIS, 2, 16384))
    assert js.feed(data[:13]) == 1  # one whole event, five bytes wait for the rest
    assert js.feed(data[13:]) == 3
    assert js.buttons[4] == 1
    assert js.axes[1] == pytest.approx(1.0)            # stick up = +1 (joy_linux's sign)
    assert js.axes[2] == pytest.approx(-16384 / 32767)


def test_unexpected_axes_buttons_and_types_are_counted_not_grown():
    js = JoystickState(max_axes=2, max_buttons=2, deadzone=0.1)
    js.feed(pack_event(JS_EVENT_AXIS, 7, 1000) + pack_event(JS_EVENT_BUTTON, 200, 1) + pack_event(0x40, 0, 1)
            + pack_event(JS_EVENT_AXIS, 0, 1000))
    assert len(js.axes) == 2 and len(js.buttons) == 2
    assert js.axes[0] == 0.0  # inside the deadzone
    assert dict(js.ignored) == {"axis_out_of_range": 1, "button_out_of_range": 1, "unknown_event_type": 1}
    js.feed(pack_event(JS_EVENT_BUTTON, 1, 1))
    js.release_all()
    assert js.buttons == [0, 0] and js.axes == [0.0, 0.0]


# --- deadman ----------------------------------------------------------------------------------------
def _buttons(*held: int) -> list[int]:
    return [1 if i in held else 0 for i in range(12)]


def test_deadman_lb_drives_rb_hands_over_nothing_stops():
    d = Deadman(TeleopConfig(speed_scale=1.5), LIMITS)
    axes = [0.0, 0.5, -1.0, 0, 0, 0]
    manual = d.decide(axes, _buttons(4), 0.01)
    assert manual.mode == MANUAL and manual.speed == pytest.approx(0.75) and manual.steering == pytest.approx(-0.34)
    assert d.decide(axes, _buttons(5), 0.01).mode == AUTONOMOUS
    assert d.decide(axes, _buttons(4, 5), 0.01).mode == MANUAL  # the human wins
    stop = d.decide(axes, _buttons(), 0.01)
    assert (stop.mode, stop.speed, stop.steering, stop.reason) == (STOP, 0.0, 0.0, "")


def test_deadman_stops_when_unsure():
    d = Deadman(TeleopConfig(speed_scale=10.0), LIMITS)
    assert d.decide(None, None, None).reason == "joystick_stale"
    assert d.decide([0.0, 1.0, 0.0], _buttons(5), 0.6).reason == "joystick_stale"   # RB but stale: no autonomy
    assert d.decide([0.0, 1.0], _buttons(4), 0.01).reason == "axis_missing"         # no axis 2
    assert d.decide([0.0, math.nan, 0.0], _buttons(4), 0.01).reason == "nonfinite_axis"
    fast = d.decide([0.0, 1.0, 0.0], _buttons(4), 0.01)
    assert fast.speed == 2.0  # clamped to the vehicle limit
    assert d.decide([0.0, -1.0, 0.0], _buttons(4), 0.01).speed == -1.0
    with pytest.raises(ValueError, match="must differ"):
        TeleopConfig(deadman_button=5)


# --- mux --------------------------------------------------------------------------------------------
def _mux(locks=()):
    return MuxCore([Source("navigation", "/drive", 10, 0.2), Source("joystick", "/teleop", 100, 0.2)],
                   list(locks), LIMITS)


def test_mux_priority_timeout_and_stop_on_stale():
    mux = _mux()
    assert mux.select(0.0).input is None  # nothing yet: stop
    assert mux.on_command("navigation", "nav", 0.1, 1.0, 0.0) is None
    assert mux.select(0.05).forward == "nav"
    mux.on_command("joystick", "joy", 0.0, 0.5, 0.1)
    assert mux.select(0.15).forward == "joy"          # higher priority wins
    mux.on_command("navigation", "nav2", 0.1, 1.0, 0.25)
    assert mux.select(0.29).input == "joystick"       # still fresh (0.19 s)
    assert mux.select(0.31).forward == "nav2"         # joystick stale: autonomy
    sel = mux.select(0.46)                            # both stale
    assert sel.input is None and sel.forward is None
    assert mux.switches["joystick->navigation"] == 1 and mux.switches["navigation->stop"] == 1


def test_mux_refuses_nonfinite_and_out_of_limit_and_stops_instead():
    mux = _mux()
    mux.on_command("navigation", "ok", 0.0, 1.0, 0.0)
    for steering, speed, reason in [(math.nan, 1.0, "nonfinite"), (0.0, math.inf, "nonfinite"),
                                    (0.5, 1.0, "steering_limit"), (0.0, 2.5, "speed_limit"),
                                    (0.0, -1.5, "speed_limit")]:
        assert mux.on_command("navigation", "bad", steering, speed, 0.1) == reason
        sel = mux.select(0.1)
        assert sel.input == "navigation" and sel.forward is None  # its latest word was refused: stop
    assert mux.on_command("navigation", "bad", 0.0, 1.0, 0.1, (0.0, math.nan, 0.0)) == "nonfinite"  # acceleration
    assert sum(mux.refused.values()) == 6
    # A refused teleop message does not hand the car to autonomy: teleop is selected, and stops.
    mux.on_command("navigation", "nav", 0.0, 1.0, 0.2)
    mux.on_command("joystick", "bad", math.nan, 0.0, 0.2)
    assert mux.select(0.25) .input == "joystick" and mux.select(0.25).forward is None


def test_mux_locks_block_lower_priorities_and_silent_heartbeats_lock():
    mux = _mux([Source("deadman", "/autonomy_lock", 50, 0.2)])
    mux.on_command("navigation", "nav", 0.0, 1.0, 0.0)
    assert mux.select(0.0).input is None              # lock never heard: engaged (heartbeat lock)
    mux.on_lock("deadman", False, 0.0)
    assert mux.select(0.05).forward == "nav"
    mux.on_lock("deadman", True, 0.1)
    assert mux.select(0.1).input is None
    mux.on_command("joystick", "joy", 0.0, 0.0, 0.1)
    assert mux.select(0.1).forward == "joy"           # priority 100 is above the lock
    mux.on_lock("deadman", False, 0.15)
    mux.on_command("navigation", "nav", 0.0, 1.0, 0.4)
    assert mux.select(0.4).input is None              # lock silent for 0.25 s: engaged
    assert mux.engaged_locks(0.4) == ["deadman"]
    no_timeout = _mux([Source("estop", "/estop", 200, 0.0)])
    no_timeout.on_command("navigation", "nav", 0.0, 1.0, 0.0)
    assert no_timeout.select(0.1).forward == "nav"    # a lock without timeout is engaged only by true


def test_mux_sources_from_f1tenth_parameters():
    params = {"topics.navigation.topic": "/drive", "topics.navigation.timeout": 0.2,
              "topics.navigation.priority": 10, "topics.joystick.topic": "/teleop",
              "topics.joystick.timeout": 0.2, "topics.joystick.priority": 100, "check_rate_hz": 50.0}
    sources = sources_from_parameters(params, "topics")
    assert [(s.name, s.topic, s.priority) for s in sources] == [("joystick", "/teleop", 100), ("navigation", "/drive", 10)]
    with pytest.raises(ValueError, match="lacks priority"):
        sources_from_parameters({"locks.x.topic": "/x", "locks.x.timeout": 1.0}, "locks")
    with pytest.raises(ValueError, match="timeout"):
        Source("x", "/x", 1, -1.0)


# --- keyboard -------------------------------------------------------------------------------------
def test_keyboard_arrows_step_clamp_and_spring_back():
    assert parse_keys(b"\x1b[A\x1b[Bx\x1b[D \x03") == ["up", "down", "left", "stop", "quit"]
    kb = KeyboardTeleop(KeyboardConfig(speed_step=1.5, steering_step=0.2), LIMITS)
    for _ in range(3):
        kb.key("up", 0.0)
    kb.key("left", 0.0)
    assert kb.command(0.1) == (pytest.approx(0.2), 2.0)
    assert kb.command(0.5) == (0.0, 2.0)               # no steering key for 0.3 s
    kb.key("stop", 0.6)
    assert kb.command(0.6) == (0.0, 0.0)


# --- camera sources, calibration, mount ---------------------------------------------------------------
def test_video_file_and_folder_sources(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), (0, 0, 200), np.uint8))  # BGR red
    writer.release()
    src = open_source(path, loop=True)
    frames = [src.read() for _ in range(5)]                          # loops past the third
    assert frames[0].shape == (48, 64, 3) and frames[0][0, 0, 0] > 150  # RGB: red first
    src.close()
    once = open_source(path, loop=False)
    for _ in range(3):
        once.read()
    with pytest.raises(SourceLost, match="end of video"):
        once.read()
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "b.png").write_bytes(b"not a png")
    src = open_source(str(folder))
    assert src.read().shape == (8, 8, 3)
    with pytest.raises(BadFrame, match="b.png"):
        src.read()
    with pytest.raises(SourceLost):
        src.read()


def test_unknown_sources_and_bad_frames_say_why(tmp_path):
    with pytest.raises(SourceError, match="no such device: /dev/video99"):
        open_source("/dev/video99")
    with pytest.raises(SourceError, match="no such video file"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path))
    with pytest.raises(BadFrame):
        check_frame(None)
    with pytest.raises(BadFrame, match="dtype"):
        check_frame(np.zeros((4, 4, 3), np.float32))
    assert check_frame(np.zeros((4, 4), np.uint8)).shape == (4, 4, 3)


CALIBRATION = {"image_width": 640, "image_height": 480, "camera_name": "front",
               "camera_matrix": {"rows": 3, "cols": 3, "data": [500, 0, 320, 0, 500, 240, 0, 0, 1]},
               "distortion_model": "plumb_bob",
               "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.1, -0.2, 0, 0, 0]},
               "rectification_matrix": {"rows": 3, "cols": 3, "data": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
               "projection_matrix": {"rows": 3, "cols": 4, "data": [500, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1, 0]}}


def test_calibration_yaml(tmp_path):
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump(CALIBRATION))
    cal = load_calibration(f"file://{path}", 640, 480)
    assert cal.calibrated and cal.k[0] == 500.0 and cal.d == [0.1, -0.2, 0.0, 0.0, 0.0] and len(cal.p) == 12
    assert not load_calibration("", 320, 240).calibrated
    bad = dict(CALIBRATION, camera_matrix={"rows": 3, "cols": 3, "data": [1, 2]})
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(CalibrationError, match="camera_matrix has 2 values"):
        load_calibration(str(path), 640, 480)
    with pytest.raises(CalibrationError, match="missing.yaml"):
        load_calibration(str(tmp_path / "missing.yaml"), 640, 480)


def test_limits_and_mount():
    assert LIMITS.violation(0.34, 2.0) is None and LIMITS.violation(0.0, -1.0) is None
    f32 = float(np.float32(0.34))  # what a command at the limit is on the wire
    assert f32 > 0.34 and LIMITS.violation(f32, 0.0) is None and LIMITS.violation(0.3401, 0.0) == "steering_limit"
    with pytest.raises(ValueError):
        VehicleLimits(max_speed=math.nan)
    x, y, z, w = quaternion_from_rpy(0.0, 0.0, math.pi / 2)
    assert (x, y) == (0.0, 0.0) and z == pytest.approx(math.sqrt(0.5)) and w == pytest.approx(math.sqrt(0.5))
    x, y, z, w = CameraMount(pitch=0.2).quaternion()
    assert y == pytest.approx(math.sin(0.1)) and x == 0.0


SMALL_SHM_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"><profiles>
  <transport_descriptors>
    <transport_descriptor><transport_id>udp</transport_id><type>UDPv4</type></transport_descriptor>
    <transport_descriptor><transport_id>shm</transport_id><type>SHM</type><segment_size>262144</segment_size>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="small" is_default_profile="true"><rtps>
    <userTransports><transport_id>shm</transport_id><transport_id>udp</transport_id></userTransports>
    <useBuiltinTransports>false</useBuiltinTransports>
  </rtps></participant>
</profiles></dds>
"""


def test_transport_limit_is_the_profiles_shared_memory_segment(tmp_path):
    from photon_policy.paths import config_dir
    from photon_policy.ros.transport import FASTDDS_DEFAULT_SHM_SEGMENT_BYTES, shm_segment_bytes
    small = tmp_path / "small.xml"
    small.write_text(SMALL_SHM_PROFILE)
    broken = tmp_path / "broken.xml"
    broken.write_text("<dds><profiles>")
    assert shm_segment_bytes(config_dir() / "fastdds_camera.xml") == 16 * 2**20
    assert shm_segment_bytes(small) == 262144
    for fallback in (None, broken, tmp_path / "absent.xml"):
        assert shm_segment_bytes(fallback) == FASTDDS_DEFAULT_SHM_SEGMENT_BYTES == 512 * 1024
