"""simulator_node: Gymnasium CarRacing-v3 as a drive-by-wire Ackermann vehicle.

Publishes (defaults; all relative, so remappable and namespaceable):
  camera/image_raw   sensor_msgs/Image (rgb8, 96x96)   sensor-data QoS
  camera/camera_info sensor_msgs/CameraInfo            sensor-data QoS
  imu                sensor_msgs/Imu                   sensor-data QoS
  odom               nav_msgs/Odometry                 reliable
  /tf, /tf_static    tf2_msgs/TFMessage  odom -> base_link -> camera_link -> camera_optical_frame
  /clock             rosgraph_msgs/Clock (sim time: DT per frame)
  sim/episode        photon_msgs/EpisodeStatus, one per frame
  sim/track          nav_msgs/Path, the track centre line (transient local; privileged, for the expert)
  sim/episode_timing diagnostic_msgs/DiagnosticStatus, one per finished episode: late, stale and
                     dropped frames, command age at each step (photon_policy.sim.timing); reliable
  /diagnostics       diagnostic_msgs/DiagnosticArray, 1 Hz
Subscribes:
  drive              ackermann_msgs/AckermannDriveStamped (steering angle rad, speed m/s); reliable,
                     depth 1: the newest command waiting replaces older ones, and one stamped
                     before the command in force is dropped (counted), so the car never acts on
                     a queued old command. Diagnostics report each command's age on arrival
                     (the simulator's clock minus its stamp).

Clock modes: `realtime` steps at rate_hz and brakes when the command is older
than command_timeout (wall; with wait_for_driver, it shows the first frame until the first
command arrives, so a driver still starting up does not cost the episode); `lockstep` steps once the command stamped with the
current frame's stamp arrives, so a run is deterministic and as fast as the loop.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry, Path
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, Imu
from tf2_msgs.msg import TFMessage

from photon_msgs.msg import EpisodeStatus
from photon_policy.ros.node_runtime import create_wall_timer, declare_config, describe, events_executor, run_node
from photon_policy.seeds import parse_seeds
from photon_policy.ros.diagnostics import Diagnostics
from photon_policy.ros.images import image_message
from photon_policy.ros.stamps import seconds_from_stamp, stamp_from_seconds
from photon_policy.sim import messages
from photon_policy.sim.carracing import DT, MAX_STEPS
from photon_policy.sim.drive_by_wire import DriveByWireConfig
from photon_policy.sim.session import SimulationSession

MODES = ("realtime", "lockstep")


@dataclass
class SimulatorParams:
    mode: str = describe("realtime", "realtime | lockstep (step when the current frame's command arrives)")
    rate_hz: float = describe(50.0, "realtime: steps per wall-clock second")
    seeds: str = describe("0", "episode seeds in order, e.g. '0-99' or '3,7'")
    repeat: bool = describe(True, "start over after the last seed; false: shut down after it")
    max_steps: int = describe(MAX_STEPS, f"steps per episode before truncation (1..{MAX_STEPS})")
    command_timeout: float = describe(0.2, "realtime: a command older than this (s) is stale and the car brakes")
    lockstep_resend: float = describe(0.5, "lockstep: republish the frame if no command came for this long (s)")
    wait_for_driver: bool = describe(False, "realtime: republish the first frame each tick, without stepping, "
                                            "until the first command arrives")
    odom_frame: str = describe("odom", "world-fixed frame")
    base_frame: str = describe("base_link", "vehicle frame")
    camera_link: str = describe("camera_link", "camera body frame")
    camera_frame: str = describe("camera_optical_frame", "frame of the image headers")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode '{self.mode}' is not one of {MODES}")
        if not 0.0 < self.rate_hz <= 1000.0:
            raise ValueError(f"rate_hz={self.rate_hz} must be in (0, 1000]")
        if not 1 <= self.max_steps <= MAX_STEPS:
            raise ValueError(f"max_steps={self.max_steps} must be in [1, {MAX_STEPS}]")
        if not self.command_timeout > 0.0:
            raise ValueError(f"command_timeout={self.command_timeout} must be > 0")
        if not self.lockstep_resend > 0.0:
            raise ValueError(f"lockstep_resend={self.lockstep_resend} must be > 0")
        parse_seeds(self.seeds)


PARAMETERS = ((SimulatorParams, ""), (DriveByWireConfig, "drive_by_wire."))
"""Every parameter the node declares: (config dataclass, name prefix)."""
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Commands: only the newest waiting one matters. A 10-deep queue behind a busy executor fed the
# car commands up to 277 ms old, one per step, under a burst (issue 14, finding 9).
NEWEST_COMMAND = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
FOREIGN_STAMP_S = 60.0
"""A command stamped further than this from the simulator's clock (or after it) is not on sim time
(e.g. a wall-clock teleop): counted, and left out of the age figures."""
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


class SimulatorNode(Node):
    def __init__(self) -> None:
        super().__init__("simulator")
        self.params = declare_config(self, SimulatorParams)
        self.dbw_config = declare_config(self, DriveByWireConfig, prefix="drive_by_wire.")
        self.session = SimulationSession(parse_seeds(self.params.seeds), self.params.repeat,
                                         self.params.max_steps, self.dbw_config)
        self.finished = False
        self.exit_code = 0

        self.image_pub = self.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, "camera/camera_info", qos_profile_sensor_data)
        self.imu_pub = self.create_publisher(Imu, "imu", qos_profile_sensor_data)
        self.odom_pub = self.create_publisher(Odometry, "odom", RELIABLE)
        self.tf_pub = self.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))
        self.tf_static_pub = self.create_publisher(TFMessage, "/tf_static", LATCHED)
        self.clock_pub = self.create_publisher(Clock, "/clock", QoSProfile(depth=1))
        self.status_pub = self.create_publisher(EpisodeStatus, "sim/episode", QoSProfile(depth=100))
        self.track_pub = self.create_publisher(Path, "sim/track", LATCHED)
        self.timing_pub = self.create_publisher(DiagnosticStatus, "sim/episode_timing", QoSProfile(depth=100))
        self.create_subscription(AckermannDriveStamped, "drive", self._on_drive, NEWEST_COMMAND)
        self.command_ages: deque[float] = deque(maxlen=1000)

        self.lockstep = self.params.mode == "lockstep"
        self.waiting_for_driver = self.params.wait_for_driver and not self.lockstep
        self._frame_stamp = None
        self._last_progress = time.monotonic()
        self._started_at = time.monotonic()
        if self.lockstep:
            create_wall_timer(self, self.params.lockstep_resend, self._resend_if_stalled)
        else:
            create_wall_timer(self, 1.0 / self.params.rate_hz, self._tick)
        self.diagnostics = Diagnostics(self, "vehicle", self._diagnostic_report, hardware_id="carracing-v3")
        self._start_episode()
        self.get_logger().info(
            f"{self.params.mode} simulation, seeds {self.params.seeds}, repeat={self.params.repeat}")

    # --- commands in -------------------------------------------------------------------------
    def _on_drive(self, msg: AckermannDriveStamped) -> None:
        if self.finished:
            return
        if self.lockstep and msg.header.stamp != self._frame_stamp:
            self.session.counters["commands_out_of_step"] += 1
            return
        now, stamp = time.monotonic(), seconds_from_stamp(msg.header.stamp)
        timeout = None if self.lockstep else self.params.command_timeout
        self._note_age(stamp)
        if not self.session.supersedes(stamp, now, timeout):
            self.get_logger().warning(f"drive command stamped {stamp:.3f} s is older than the one in force: dropped",
                                      throttle_duration_sec=1.0)
            return
        problems = self.session.accept_command(msg.drive.steering_angle, msg.drive.speed, now, stamp)
        self.session.timing.answer(stamp, now)
        self.waiting_for_driver = False
        if problems:
            self.get_logger().warning(
                f"drive command {msg.drive.steering_angle!r} rad, {msg.drive.speed!r} m/s: "
                f"{', '.join(problems)}; applied {self.session.command.steering_angle:.3f} rad, "
                f"{self.session.command.speed:.2f} m/s", throttle_duration_sec=1.0)
        if self.lockstep:
            self._advance()

    def _note_age(self, stamp: float) -> None:
        age = self.session.tick * DT - stamp
        if 0.0 <= age <= FOREIGN_STAMP_S:
            self.command_ages.append(age)
        else:
            self.session.counters["commands_not_on_sim_time"] += 1

    # --- stepping ----------------------------------------------------------------------------
    def _tick(self) -> None:
        if self.waiting_for_driver:
            self._publish_frame(with_tf=False)  # the same frame again: tf would repeat its stamp
            return
        if not self.finished:
            stale = self.session.command_is_stale(time.monotonic(), self.params.command_timeout)
            if stale and self.session.command is not None:
                self.get_logger().warning(
                    f"no drive command for more than {self.params.command_timeout} s: braking",
                    throttle_duration_sec=2.0)
            self._advance()

    def _advance(self) -> None:
        timeout = None if self.lockstep else self.params.command_timeout
        self.session.step(time.monotonic(), timeout)
        self._last_progress = time.monotonic()
        self._publish_frame(with_tf=True)
        if self.session.episode_done:
            r = self.session.last_result
            self.get_logger().info(
                f"episode {self.session.episode} seed {self.session.seed}: score {r.score:.1f} "
                f"in {r.step} steps ({r.reason})")
            self._publish_timing()
            self._start_episode()

    def _start_episode(self) -> None:
        if not self.session.start_next_episode():
            self.get_logger().info("last seed done; shutting down")
            # Reliable delivery needs the writer alive until readers acknowledge the final status.
            self.status_pub.wait_for_all_acked(Duration(seconds=2.0))
            self.timing_pub.wait_for_all_acked(Duration(seconds=2.0))
            self.finished = True
            return
        stamp = self._stamp()
        self.track_pub.publish(messages.track_path(self.session.vehicle.track_centerline(), stamp,
                                                   self.params.odom_frame))
        # The expert must hold the new track before it sees the new episode's first odometry.
        self.track_pub.wait_for_all_acked(Duration(seconds=1.0))
        self.tf_static_pub.publish(TFMessage(transforms=messages.camera_transforms(
            stamp, self.params.base_frame, self.params.camera_link, self.params.camera_frame)))
        self._publish_frame(with_tf=True)

    def _resend_if_stalled(self) -> None:
        if not self.finished and time.monotonic() - self._last_progress > self.params.lockstep_resend:
            self.session.counters["lockstep_resends"] += 1
            self._last_progress = time.monotonic()
            self._publish_frame(with_tf=False)  # tf would repeat the same stamp

    # --- messages out ------------------------------------------------------------------------
    def _stamp(self):
        return stamp_from_seconds(self.session.tick * DT)

    def _publish_frame(self, with_tf: bool) -> None:
        p, s = self.params, self.session
        stamp = self._stamp()
        self._frame_stamp = stamp
        s.timing.frame(seconds_from_stamp(stamp), time.monotonic())
        state = s.state
        self.clock_pub.publish(messages.clock(stamp))
        if with_tf:
            self.tf_pub.publish(TFMessage(transforms=[
                messages.odom_transform(state, stamp, p.odom_frame, p.base_frame)]))
        self.imu_pub.publish(messages.imu(state, stamp, p.base_frame))
        self.info_pub.publish(messages.camera_info(stamp, p.camera_frame))
        self.image_pub.publish(image_message(s.frame, stamp, p.camera_frame))
        self.status_pub.publish(messages.episode_status(s.seed, s.episode, s.last_result, state,
                                                        stamp, p.odom_frame))
        self.odom_pub.publish(messages.odometry(state, stamp, p.odom_frame, p.base_frame))

    def _publish_timing(self) -> None:
        s = self.session
        values = {"episode": s.episode, "seed": s.seed, "mode": self.params.mode, **s.timing.summary(),
                  "command_age_ms": ",".join(f"{a:g}" for a in s.timing.ages_ms)}
        self.timing_pub.publish(DiagnosticStatus(
            name=f"episode {s.episode}", hardware_id="carracing-v3",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()]))

    def _diagnostic_report(self) -> tuple[dict, list[str]]:
        counters = self.session.counters
        elapsed = max(time.monotonic() - self._started_at, 1e-9)
        problems = sum(v for k, v in counters.items() if k.endswith(("_nonfinite", "_out_of_range")))
        ages = np.asarray(self.command_ages) * 1e3
        age = {f"command_age_ms_{k}": (f"{f(ages):.1f}" if len(ages) else "nan")
               for k, f in (("p50", np.median), ("p99", lambda a: np.percentile(a, 99)), ("max", np.max))}
        values = {**counters, **age, "steps_per_second": f"{counters['steps'] / elapsed:.1f}",
                  "episode": self.session.episode, "seed": self.session.seed, "mode": self.params.mode}
        return values, [text for text, bad in ((f"{problems} bad commands", problems),
                                               (f"{counters['stale_ticks']} stale ticks", counters["stale_ticks"])) if bad]

    def publish_safe_state(self) -> None:
        """On shutdown: final diagnostics and an episode status that says the run was stopped."""
        self.diagnostics.publish()
        if self.session.frame is not None and not self.finished:
            status = messages.episode_status(self.session.seed, self.session.episode, self.session.last_result,
                                             self.session.state, self._stamp(), self.params.odom_frame)
            status.done = True
            status.reason = "shutdown"
            self.status_pub.publish(status)
            self.status_pub.wait_for_all_acked(Duration(seconds=1.0))


def main(args: list[str] | None = None) -> int:
    return run_node(SimulatorNode, args, executor_factory=events_executor())


if __name__ == "__main__":
    raise SystemExit(main())
