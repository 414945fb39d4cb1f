"""policy_node: camera frames, IMU and odometry in; an Ackermann command per camera frame out.

Subscribes:
  camera/image_raw  sensor_msgs/Image (rgb8/bgr8/rgba8/bgra8/mono8; other sizes are resampled,
                    other encodings dropped and counted)                  sensor-data QoS;
                    image_transport: compressed takes sensor_msgs/CompressedImage (JPEG, PNG) on
                    camera/image_raw/compressed instead
  imu               sensor_msgs/Imu: linear_acceleration.x/y, angular_velocity.z   sensor-data QoS
  odom              nav_msgs/Odometry: twist.linear.x (forward speed)     best effort (matches any)
  applied_drive     ackermann_msgs/AckermannDriveStamped: the command applied to the car, read in
                    shadow mode (remap it to the driver's topic); in autonomous mode the node's
                    own output is the applied command
Publishes:
  drive             ackermann_msgs/AckermannDriveStamped, mode=autonomous only
  policy/drive      the same, mode=shadow only (shadow mode never creates a publisher on drive)
  /diagnostics      1 Hz: inference time p50/p99, dropped frames by reason, limit hits,
                    watchdog stops, missing inputs
Every command's header.stamp is the stamp of the camera frame it answers; a frame sent again
with the same stamp (the lockstep simulator's resend) gets the same command again.

Parameters (config/policy.yaml): checkpoint (empty = models/policy.pt shipped), export
(eager | torchscript | path of a `photon export` file), device, threads, mode (autonomous |
shadow), frame_id, input_timeout, and the SafetyConfig limits (photon_policy.policy.safety): steering
and speed limits and rates, watchdog_s. A checkpoint that cannot be used stops start-up
(exit code 2) with the reason.

Safety: every model output passes the safety layer, so nothing non-finite or out of limits
is published (a non-finite output publishes a stop and logs why). Watchdog (autonomous): when
the newest camera frame is older than watchdog_s, stops are published (stamped now) until
frames return; under sim time the frame must be that old in sim time as well, because a
paused or lockstep simulator's world stands still while it waits. Until the policy has its
0.2 s of context it holds its last command for up to watchdog_s, else commands a stop.
Missing IMU: zeros; missing odometry: the applied command's speed (see photon_policy.policy.runtime).
Ctrl-C publishes a stop.
"""
from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np
import torch
from ackermann_msgs.msg import AckermannDriveStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, Imu

from photon_policy.paths import shipped_model
from photon_policy.ros.camera import IMAGE_TRANSPORT_HELP, CameraIntake, check_transport, subscribe_camera
from photon_policy.ros.diagnostics import Diagnostics
from photon_policy.ros.node_runtime import (ConfigError, create_wall_timer, declare_config, describe, events_executor,
                                            publish_delivered, run_node)
from photon_policy.ros.stamps import seconds_from_stamp
from photon_policy.policy.checkpoint import CheckpointError
from photon_policy.policy.export import BACKENDS, load_compute
from photon_policy.policy.frame_commands import FrameCommander, LastCommand
from photon_policy.policy.runtime import runtime_for, warm_up
from photon_policy.policy.safety import SPEED_NONFINITE, STEERING_NONFINITE, SafetyConfig, SafetyLayer

MODES = ("autonomous", "shadow")
WATCHDOG_CHECK_S = 0.02
"""Longest period of the camera watchdog's check, s (see the timer in PolicyNode.__init__)."""
SHIPPED = "policy.pt"


@dataclass
class PolicyNodeParams:
    checkpoint: str = describe("", "policy checkpoint; empty = models/policy.pt shipped with the package")
    export: str = describe("torchscript", "eager | torchscript (the checkpoint traced at start-up: ~2.5x faster "
                                          "per frame) | onnx (ONNX Runtime; exported once, cached by content "
                                          "hash) | path of a `photon export` file (.onnx or TorchScript)")
    device: str = describe("cpu", "torch device: cpu, cuda, cuda:N")
    threads: int = describe(1, "torch CPU threads (1 is fastest at batch 1 on a small CPU)")
    mode: str = describe("autonomous", "autonomous: publish on drive; shadow: publish on policy/drive only")
    frame_id: str = describe("base_link", "header.frame_id of the commands")
    input_timeout: float = describe(0.5, "s: IMU or odometry older than this counts as missing")
    image_transport: str = describe("raw", IMAGE_TRANSPORT_HELP)

    def __post_init__(self) -> None:
        check_transport(self.image_transport)
        if self.mode not in MODES:
            raise ValueError(f"mode '{self.mode}' is not one of {', '.join(MODES)}")
        if self.threads < 1:
            raise ValueError(f"threads={self.threads} must be >= 1")
        if not self.device.startswith(("cpu", "cuda")):
            raise ValueError(f"device '{self.device}' is not cpu or cuda[:N]")
        if not self.export:
            raise ValueError("export must be eager, torchscript or a file path")
        if not self.input_timeout > 0.0:
            raise ValueError(f"input_timeout={self.input_timeout} must be > 0")


PARAMETERS = ((PolicyNodeParams, ""), (SafetyConfig, ""))
"""Every parameter the node declares: (config dataclass, name prefix)."""


def source(p: PolicyNodeParams) -> str:
    """The file the node loads: the checkpoint (empty: the shipped one), or an exported file, which
    carries everything (then `checkpoint` is not read)."""
    if p.export in BACKENDS:
        return p.checkpoint or str(shipped_model(SHIPPED, "policy"))
    return p.export


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        self.params = p = declare_config(self, PolicyNodeParams)
        self.safety = SafetyLayer(declare_config(self, SafetyConfig))
        torch.set_num_threads(p.threads)
        try:
            path = source(p)
            compute = load_compute(path, p.export, p.device, p.threads)
        except (CheckpointError, FileNotFoundError) as exc:
            raise ConfigError(f"checkpoint refused: {exc}") from exc
        self.size = compute.config.wm.image_size
        self.runtime = runtime_for(compute, p.device, p.input_timeout)
        self.autonomous = p.mode == "autonomous"
        self.commander = FrameCommander(self.runtime, self.safety, self.autonomous)
        self.camera = CameraIntake(self.size, lambda text: self.get_logger().warning(text, throttle_duration_sec=2.0))
        self.missing: Counter[str] = Counter()
        self.compute_times: deque[float] = deque(maxlen=1000)
        self.callback_times: deque[float] = deque(maxlen=1000)
        self.commands = 0
        self.watchdog_stops = 0
        self._last_msg: AckermannDriveStamped | None = None
        self._last_frame_wall: float | None = None
        self._last_frame_stamp: float | None = None
        self._missing_now: tuple[str, ...] = ()
        self._warm_up(compute)

        # Inputs first: when several are ready at once, the executor serves them in creation order,
        # so a frame is computed after the IMU/odometry that arrived with it.
        self.create_subscription(Imu, "imu", self._on_imu, qos_profile_sensor_data)
        self.create_subscription(Odometry, "odom", self._on_odom, qos_profile_sensor_data)
        if not self.autonomous:
            self.create_subscription(AckermannDriveStamped, "applied_drive", self._on_applied, QoSProfile(depth=10))
        subscribe_camera(self, p.image_transport, self._on_image)
        topic = "drive" if self.autonomous else "policy/drive"
        self.drive_pub = self.create_publisher(AckermannDriveStamped, topic, QoSProfile(depth=10))
        self.diagnostics = Diagnostics(self, "policy", self._diagnostic_report, hardware_id=p.device)
        # The promise is a stop within watchdog_s + 50 ms of the last good frame. A check every
        # watchdog_s / 4 (50 ms) spent that whole margin on the check period, and 3 trials in 24
        # came 4-12 ms late (issue 14, finding 8); a check every 20 ms leaves 30 ms for the
        # executor's latency, at the cost of a trivial callback 50 times a second.
        create_wall_timer(self, min(self.safety.config.watchdog_s / 4.0, WATCHDOG_CHECK_S), self._watchdog)
        self.get_logger().info(f"policy {path} ({compute.kind}, {self.size} px, device {p.device}): "
                               f"{p.mode}, commands on {self.drive_pub.topic_name}")

    def _warm_up(self, compute) -> None:
        rt = self.runtime
        if not warm_up(compute, rt.steps, rt.dt, rt.latent_shape, self.size, rt.device):
            self.get_logger().error("the policy's output is not finite on a blank frame: "
                                    "expect its commands to be stops")

    # --- inputs ----------------------------------------------------------------------------------
    def _on_imu(self, msg: Imu) -> None:
        a, w = msg.linear_acceleration, msg.angular_velocity
        self.runtime.add_imu(seconds_from_stamp(msg.header.stamp), a.x, a.y, w.z)

    def _on_odom(self, msg: Odometry) -> None:
        self.runtime.add_odom(seconds_from_stamp(msg.header.stamp), msg.twist.twist.linear.x)

    def _on_applied(self, msg: AckermannDriveStamped) -> None:
        self.runtime.add_applied(seconds_from_stamp(msg.header.stamp), msg.drive.steering_angle,
                                 msg.drive.speed)

    def _on_image(self, msg: Image) -> None:
        started = time.perf_counter()
        frame = self.camera.frame(msg)
        if frame is None:
            return
        stamp = seconds_from_stamp(msg.header.stamp)
        last = self._last_msg
        out = self.commander.command(frame, stamp, last and LastCommand(
            seconds_from_stamp(last.header.stamp), last.drive.steering_angle, last.drive.speed))
        if out.result.status == "repeat":
            if last is not None and last.header.stamp == msg.header.stamp:
                self.drive_pub.publish(last)
            return
        if out.result.status == "out_of_order":
            self.camera.drop("out_of_order", f"frame stamped {stamp:.3f} s is older than the newest")
            return
        self._last_frame_wall, self._last_frame_stamp = time.monotonic(), stamp
        self._missing_now = out.result.missing
        self.missing.update(out.result.missing)
        if out.result.command is not None:
            self.compute_times.append(out.result.compute_s)
        if out.nonfinite:
            self.get_logger().error(f"policy output {out.result.command.tolist()} is not finite: publishing a stop",
                                    throttle_duration_sec=2.0)
        self._publish(msg.header.stamp, out.steering, out.speed)
        self.callback_times.append(time.perf_counter() - started)

    def _publish(self, stamp, steering: float, speed: float, delivered: bool = False) -> None:
        msg = AckermannDriveStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self.params.frame_id
        msg.drive.steering_angle = float(steering)
        msg.drive.speed = float(speed)
        if delivered:
            publish_delivered(self, self.drive_pub, msg)
        else:
            self.drive_pub.publish(msg)
        self._last_msg = msg
        self.commands += 1

    # --- watchdog, diagnostics, shutdown -----------------------------------------------------------
    def frame_age(self) -> float:
        """Seconds since the newest camera frame: wall-clock age, or under sim time the smaller
        of that and its sim-time age (a world that stands still makes no frame stale)."""
        if self._last_frame_wall is None:
            return 0.0
        age = time.monotonic() - self._last_frame_wall
        clock = self.get_clock()
        if clock.ros_time_is_active:
            age = min(age, clock.now().nanoseconds * 1e-9 - self._last_frame_stamp)
        return age

    def _watchdog(self) -> None:
        if self.autonomous and self.frame_age() > self.safety.config.watchdog_s:
            self.get_logger().warning(f"no camera frame for {self.frame_age():.2f} s: stopping",
                                      throttle_duration_sec=2.0)
            self.watchdog_stops += 1
            self._publish(self.get_clock().now().to_msg(), *self.safety.stop())

    def _diagnostic_report(self) -> tuple[dict, list[str]]:
        def ms(times: deque[float], q: float) -> str:
            return f"{np.percentile(np.asarray(times) * 1e3, q):.2f}" if times else "nan"

        dropped = self.camera.dropped
        hits = self.safety.hits
        values = {"mode": self.params.mode, "commands": self.commands,
                  "inference_ms_p50": ms(self.compute_times, 50), "inference_ms_p99": ms(self.compute_times, 99),
                  "callback_ms_p50": ms(self.callback_times, 50), "callback_ms_p99": ms(self.callback_times, 99),
                  "dropped_frames": dropped, "frames_lost_in_transport": self.camera.lost,
                  **{f"dropped_{k}": v for k, v in self.camera.drops.items()},
                  "limit_hits": sum(hits.values()), **{f"limit_{k}": v for k, v in hits.items()},
                  "stops": self.safety.stops, "watchdog_stops": self.watchdog_stops,
                  "frames_without_context": self.commander.frames_without_context,
                  "frames_without_imu": self.missing["imu"], "frames_without_odom": self.missing["odom"],
                  "imu": "missing: zeros" if "imu" in self._missing_now else "ok",
                  "odom": "missing: applied command speed" if "odom" in self._missing_now else "ok",
                  "frame_age_s": f"{self.frame_age():.3f}"}
        problems = [text for text, bad in (
            (f"{dropped} frames dropped", dropped), (f"missing {', '.join(self._missing_now)}", self._missing_now),
            (f"{self.watchdog_stops} watchdog stops", self.watchdog_stops),
            ("non-finite outputs", hits[STEERING_NONFINITE] + hits[SPEED_NONFINITE])) if bad]
        return values, problems

    def publish_safe_state(self) -> None:
        """Ctrl-C: a stop is the last word on the output topic (delivered before the process ends)."""
        self._publish(self.get_clock().now().to_msg(), *self.safety.stop(), delivered=True)
        self.diagnostics.publish()


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args, executor_factory=events_executor())


if __name__ == "__main__":
    raise SystemExit(main())
