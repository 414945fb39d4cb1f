"""policy_node over real DDS with real (tiny) checkpoints: topics per mode, stamps, the watchdog,
Ctrl-C, adversarial checkpoints, refusals; the closed loop through `photon eval` and a DAgger
collection through `photon collect --driver policy`."""
from __future__ import annotations

import math
import subprocess
import time

import numpy as np
import pytest
import torch
from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, Imu

from photon_policy.bags.collect import collect
from photon_policy.bags.reader import read_episode
from photon_policy.cli import main as photon
from photon_policy.profiles import load_profile, node_command
from photon_policy.ros.images import image_message
from photon_policy.ros.stamps import seconds_from_stamp, stamp_from_seconds
from photon_policy.sim import messages
from photon_policy.policy.checkpoint import save_policy
from photon_policy.policy.export import export_torchscript
from photon_policy.policy.model import DrivingPolicy
from conftest import tiny_world_model

SIZE = 32
T0 = 100.0


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """A tiny world model, a policy started from it, and adversarial variants of that policy."""
    root = tmp_path_factory.mktemp("policy")
    wm_path = tiny_world_model(root, SIZE)
    policy = DrivingPolicy.from_world_model(wm_path, head_width=16)
    with torch.no_grad():
        policy.head[-1].bias[1] = 2.0  # drive off (sigmoid(2) * 100 = 88 m/s): the ramp and the stop show
    good = save_policy(root / "policy.pt", policy)
    # Outputs far outside the node's limits, flipping with the image: +-10 rad, up to 1e6 m/s.
    huge = DrivingPolicy.from_world_model(wm_path, head_width=16, max_steering_angle=10.0, max_speed=1e6)
    with torch.no_grad():
        huge.head[-1].weight.mul_(1e6)
    huge_ts = export_torchscript(save_policy(root / "huge.pt", huge), root / "huge.torchscript.pt")
    # Finite weights (non-finite ones are refused at loading) whose outputs are not: the first conv's
    # +-3.4e38 overflow to +inf and -inf in one sum, which makes NaN.
    nan = DrivingPolicy.from_world_model(wm_path, head_width=16)
    with torch.no_grad():
        w = nan.world_model.encoder[0].weight
        w.copy_(torch.sign(torch.randn_like(w)) * 3.4e38)
    return {"wm": wm_path, "good": good, "huge_ts": huge_ts, "nan": save_policy(root / "nan.pt", nan)}


class Feed:
    """Camera frames, IMU and odometry at 50 Hz from the probe, each with its own stamp."""

    def __init__(self, probe, imu: bool = True, clock: bool = False) -> None:
        self.probe = probe
        self.image = probe.publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
        self.imu = probe.publisher(Imu, "/imu", qos_profile_sensor_data) if imu else None
        self.odom = probe.publisher(Odometry, "/odom", QoSProfile(depth=10))
        self.clock = probe.publisher(Clock, "/clock", QoSProfile(depth=1)) if clock else None
        self.rng = np.random.default_rng(0)
        self.k = 0
        self.sent: list[float] = []

    def wait_for_node(self, output: str = "/drive", nodes: int = 1) -> None:
        """Frames until `nodes` policy nodes answer on `output`: discovery is complete both ways,
        so no later frame goes unanswered. `sent` then starts empty."""
        self.probe.wait_for(lambda: self.image.get_subscription_count() >= nodes, 30, "policy node up")
        answers: list[AckermannDriveStamped] = []
        sub = self.probe.node.create_subscription(AckermannDriveStamped, output, answers.append, 100)
        end = time.monotonic() + 20
        while not any(seconds(m) in np.round(self.sent, 6) for m in answers):
            assert time.monotonic() < end, f"no answer on {output}"
            self.frame()
        self.probe.spin(0.1)
        self.probe.node.destroy_subscription(sub)
        self.sent.clear()

    def stamp(self) -> float:
        return T0 + 0.02 * self.k

    def frame(self, size: int = SIZE, encoding: str = "rgb8") -> float:
        stamp = stamp_from_seconds(self.stamp())
        if self.clock is not None:
            self.clock.publish(messages.clock(stamp))
        if self.imu is not None:
            imu = Imu()
            imu.header.stamp = stamp
            imu.linear_acceleration.x = 5.0
            self.imu.publish(imu)
        msg = image_message(self.rng.integers(0, 255, (size, size, 3), dtype=np.uint8), stamp, "camera_optical_frame")
        msg.encoding = encoding
        self.image.publish(msg)
        odom = Odometry()
        odom.header.stamp = stamp
        odom.twist.twist.linear.x = 20.0
        self.odom.publish(odom)
        self.sent.append(self.stamp())
        self.k += 1
        self.probe.spin(0.02)
        return self.sent[-1]

    def frames(self, n: int) -> None:
        for _ in range(n):
            self.frame()


def timed(probe, topic: str) -> list[tuple[float, AckermannDriveStamped]]:
    box: list[tuple[float, AckermannDriveStamped]] = []
    probe.node.create_subscription(AckermannDriveStamped, topic, lambda m: box.append((time.monotonic(), m)), 10)
    return box


def seconds(msg: AckermannDriveStamped) -> float:
    return round(seconds_from_stamp(msg.header.stamp), 6)


def diagnostic(diags, key: str) -> str | None:
    for array in reversed(diags):
        for status in array.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.endswith(": policy") and key in values:
                return values[key]
    return None


def test_autonomous_mode_answers_every_frame_on_drive_with_its_stamp(ckpts, nodes, probe):
    nodes.start("sim-policy", "policy", checkpoint=str(ckpts["good"]), use_sim_time=False)
    drive = probe.subscribe(AckermannDriveStamped, "/drive")
    shadow = probe.subscribe(AckermannDriveStamped, "/policy/drive")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    feed = Feed(probe, imu=False)  # no IMU at all: the documented fallback, reported
    feed.wait_for_node()
    feed.frames(25)
    converted = feed.frame(size=64, encoding="bgr8")  # resampled to the model's 32 px
    dropped = feed.frame(encoding="yuv422")           # cannot be converted: dropped and counted
    feed.frames(5)
    feed.k -= 1
    resent = feed.frame()                              # the same stamp again: the same answer again
    answered = set(np.round(feed.sent, 6)) - {round(dropped, 6)}
    probe.wait_for(lambda: {seconds(m) for m in drive} >= answered, 10, "a command per frame")
    probe.wait_for(lambda: diagnostic(diags, "dropped_encoding_yuv422") == "1", 5, "the dropped frame counted")
    stamps = [seconds(m) for m in drive if feed.sent[0] <= seconds(m) <= feed.sent[-1]]
    assert set(stamps) == answered  # every command carries its frame's stamp; none for the dropped frame
    assert stamps.count(round(resent, 6)) == 2 and round(converted, 6) in stamps
    twice = [m for m in drive if seconds(m) == round(resent, 6)]
    assert twice[0].drive == twice[1].drive
    speeds = [m.drive.speed for m in drive]
    assert all(np.isfinite(speeds)) and speeds[0] == 0.0 and max(speeds) > 10.0  # from a stop, ramping up
    assert not shadow
    assert diagnostic(diags, "imu") == "missing: zeros" and int(diagnostic(diags, "frames_without_imu")) > 20
    assert diagnostic(diags, "odom") == "ok" and float(diagnostic(diags, "inference_ms_p99")) > 0.0


def test_shadow_mode_never_publishes_on_drive(ckpts, nodes, probe):
    nodes.start("sim-shadow", "policy", checkpoint=str(ckpts["good"]), use_sim_time=False)
    drive = probe.subscribe(AckermannDriveStamped, "/drive")
    shadow = probe.subscribe(AckermannDriveStamped, "/policy/drive")
    teleop = probe.publisher(AckermannDriveStamped, "/teleop")  # the applied command in this profile
    feed = Feed(probe)
    feed.wait_for_node("/policy/drive")
    probe.wait_for(lambda: teleop.get_subscription_count() > 0, 10, "the policy reading /teleop")
    for _ in range(20):
        cmd = AckermannDriveStamped()
        cmd.header.stamp = stamp_from_seconds(feed.stamp())
        cmd.drive.speed = 30.0
        feed.frame()
        teleop.publish(cmd)
    probe.wait_for(lambda: {seconds(m) for m in shadow} >= set(np.round(feed.sent, 6)), 10, "shadow commands")
    assert not drive and probe.node.get_publishers_info_by_topic("/drive") == []
    assert nodes.interrupt(nodes.procs[-1][1]) == 0
    probe.wait_for(lambda: shadow[-1].drive.speed == 0.0, 5, "the Ctrl-C stop on /policy/drive")
    assert not drive  # it stays off /drive to the end


def test_watchdog_stops_within_its_deadline_and_ctrl_c_stops(ckpts, nodes, probe):
    proc = nodes.start("sim-policy", "policy", checkpoint=str(ckpts["good"]), use_sim_time=False)
    drive = timed(probe, "/drive")
    feed = Feed(probe)
    feed.wait_for_node()
    drive.clear()  # what came while discovery completed (it may include watchdog stops)
    feed.frames(30)
    sent = set(np.round(feed.sent, 6))

    def stops_after_the_last_answer() -> list[tuple[float, AckermannDriveStamped]]:
        answered = [t for t, m in drive if seconds(m) in sent]
        return [(t, m) for t, m in drive if seconds(m) not in sent and answered and t > max(answered)]
    probe.wait_for(stops_after_the_last_answer, 3, "a watchdog stop")
    arrived, stop = stops_after_the_last_answer()[0]
    # The newest frame the node saw: its answer came back at about the time the node had it.
    answered_at = max(t for t, m in drive if seconds(m) in sent)
    # How soon the stop comes is measured by benchmarks/, not asserted on a busy machine.
    assert stop.drive.speed == 0.0 and arrived > answered_at
    moving = [m for _, m in drive if seconds(m) in np.round(feed.sent, 6)]
    assert moving[-1].drive.speed > 10.0  # it was driving until the camera went quiet
    feed.frames(15)                       # frames again: driving again (ramping up from the stop)
    probe.wait_for(lambda: drive[-1][1].drive.speed > 0.0, 5, "driving again")
    drive.clear()
    assert nodes.interrupt(proc) == 0     # Ctrl-C within 0.2 s of the last frame: no watchdog involved
    probe.wait_for(lambda: drive, 5, "the Ctrl-C stop")
    assert drive[-1][1].drive.speed == 0.0 and seconds(drive[-1][1]) not in np.round(feed.sent, 6)


def test_watchdog_under_sim_time_waits_while_the_clock_stands_still(ckpts, nodes, probe):
    nodes.start("sim-policy", "policy", checkpoint=str(ckpts["good"]))  # use_sim_time: true (profile)
    drive = timed(probe, "/drive")
    feed = Feed(probe, clock=True)
    feed.wait_for_node()
    feed.frames(20)
    drive.clear()
    probe.spin(0.6)  # a lockstep simulator waiting: wall time passes, sim time does not
    assert {seconds(m) for _, m in drive} <= set(np.round(feed.sent, 6))
    feed.clock.publish(messages.clock(stamp_from_seconds(feed.sent[-1] + 0.25)))  # the world moved on
    sent = time.monotonic()
    probe.wait_for(lambda: any(seconds(m) not in np.round(feed.sent, 6) for _, m in drive), 3, "a watchdog stop")
    arrived, stop = next((t, m) for t, m in drive if seconds(m) not in np.round(feed.sent, 6))
    assert stop.drive.speed == 0.0 and arrived > sent
    assert seconds(stop) == pytest.approx(feed.sent[-1] + 0.25)  # stamped with the (sim) time it was sent


def test_limits_hold_for_adversarial_checkpoints(ckpts, nodes, probe):
    nodes.start("sim-policy", "policy", export=str(ckpts["huge_ts"]), use_sim_time=False,
                remap={"drive": "/drive_huge"})
    nodes.start("sim-policy", "policy", checkpoint=str(ckpts["nan"]), export="eager", use_sim_time=False,
                remap={"drive": "/drive_nan"})
    huge = probe.subscribe(AckermannDriveStamped, "/drive_huge")
    nan = probe.subscribe(AckermannDriveStamped, "/drive_nan")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    feed = Feed(probe)
    feed.wait_for_node("/drive_huge", nodes=2)
    feed.wait_for_node("/drive_nan", nodes=2)
    feed.frames(60)
    probe.wait_for(lambda: len(huge) >= 60 and len(nan) >= 60, 10, "commands from both")
    for box in (huge, nan):
        for m in box:
            assert math.isfinite(m.drive.steering_angle) and math.isfinite(m.drive.speed)
            assert abs(m.drive.steering_angle) <= 0.4 and 0.0 <= m.drive.speed <= 100.0
    frames = [m for m in huge if seconds(m) < 1e6]  # answers to frames (not wall-clock-stamped stops)
    dt = np.minimum(np.diff([seconds(m) for m in frames]), 0.1)  # a gap counts as at most 0.1 s
    steering = np.array([m.drive.steering_angle for m in frames])
    speed = np.array([m.drive.speed for m in frames])
    assert np.all(np.abs(np.diff(steering)) <= 4.0 * dt + 1e-6)   # steering rate 4 rad/s
    assert np.all(np.diff(speed) <= 150.0 * dt + 1e-5)            # acceleration 150 m/s^2
    assert all(m.drive.speed == 0.0 for m in nan)                   # non-finite output: stops only
    # Every frame's +-10 rad was clamped; the NaN node counted its non-finite outputs.
    probe.wait_for(lambda: int(diagnostic(diags, "limit_steering_limit") or 0) >= 50 and
                   int(diagnostic(diags, "limit_steering_nonfinite") or 0) >= 50, 5, "limit hits on /diagnostics")


def test_node_refuses_unusable_checkpoints(ckpts, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    cases = {"corrupt or truncated": {"checkpoint": str(corrupt)},
             "world-model checkpoint": {"checkpoint": str(ckpts["wm"])},
             "not a TorchScript file": {"export": str(ckpts["good"])},
             "mode 'drive' is not one of": {"mode": "drive", "checkpoint": str(ckpts["good"])}}
    spec = load_profile("sim-policy").node("policy")
    procs = []
    for i, params in enumerate(cases.values()):
        log = tmp_path / f"policy{i}.log"
        procs.append((log, subprocess.Popen(node_command(spec, params), stdout=log.open("wb"),
                                            stderr=subprocess.STDOUT)))
    for (log, proc), why in zip(procs, cases):
        assert proc.wait(timeout=60) == 2, why
        text = log.read_text()
        assert why in text and "configuration error" in text, text


def test_photon_eval_drives_the_closed_loop_with_a_named_checkpoint(ckpts, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert photon(["eval", "--driver", "policy", "--ckpt", str(ckpts["good"]), "--seeds", "100",
                   "--max-steps", "40", "--quiet", "--json", str(out), "--log-dir", str(tmp_path / "logs")]) == 0
    assert "policy: mean" in capsys.readouterr().out
    assert str(ckpts["good"]) in (tmp_path / "logs" / "policy.log").read_text()


def test_collect_with_the_policy_driving_records_expert_labels(ckpts, tmp_path):
    [bag] = collect(tmp_path / "bags", [1000], 0.0, max_steps=40, progress=False, prefix="dagger_",
                    driver="policy", checkpoint=str(ckpts["good"]), log_dir=tmp_path / "logs")
    result = read_episode(bag)
    ep = result.arrays
    assert len(ep) == 41 and not ep.segments.any()
    assert (result.final_step, result.final_reason) == (40, "time_limit")
    # Applied commands are the policy's (from a stop, ramping), labels the expert's (full throttle at once).
    assert ep.commands[0, 1] == 0.0 and ep.teleop[1, 1] > 10.0
    assert not np.allclose(ep.commands, ep.teleop)
