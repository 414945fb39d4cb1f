"""expert_node: the privileged simulated driver; it stands in for the human teleop driver.

Subscribes:
  odom       nav_msgs/Odometry (pose and speed of base_link)
  sim/track  nav_msgs/Path, the track centre line (transient local; one per episode)
Publishes:
  teleop     ackermann_msgs/AckermannDriveStamped, stamped with the odometry it answers
  drive      only with steering noise and label_topic_clean (DART): the noisy command it
             executes, while teleop carries the clean command (the label)
  /diagnostics

Parameters: every field of ExpertConfig (pure pursuit, speed profile, injected
steering noise, off by default) plus `track_width` and `label_topic_clean`.

One command per odometry stamp: a repeated stamp (the simulator's lockstep
resend) gets the same command again, so the driver's internal state advances
exactly once per frame and lockstep runs stay deterministic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ackermann_msgs.msg import AckermannDriveStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from photon_policy.expert.pure_pursuit import ExpertConfig, ExpertDriver
from photon_policy.ros.diagnostics import Diagnostics
from photon_policy.ros.node_runtime import declare_config, describe, publish_delivered, run_node
from photon_policy.sim.carracing import CarRacingVehicle, VehicleState
from photon_policy.ros.transforms import yaw_from_quaternion
from photon_policy.sim.messages import centerline_from_path


@dataclass
class ExpertNodeParams:
    track_width: float = describe(CarRacingVehicle.track_width, "road width edge to edge (m)")
    label_topic_clean: bool = describe(False, "with steering noise: publish the noisy command on drive and the "
                                              "clean one (the label) on teleop (DART); else the noisy one on teleop")

    def __post_init__(self) -> None:
        if not self.track_width > 0.0:
            raise ValueError(f"track_width={self.track_width} must be > 0")


PARAMETERS = ((ExpertNodeParams, ""), (ExpertConfig, ""))
"""Every parameter the node declares: (config dataclass, name prefix)."""


class ExpertNode(Node):
    def __init__(self) -> None:
        super().__init__("expert")
        self.params = declare_config(self, ExpertNodeParams)
        self.config = declare_config(self, ExpertConfig)
        self.drive_pub = self.create_publisher(AckermannDriveStamped, "teleop", QoSProfile(depth=10))
        self.dart = self.params.label_topic_clean and self.config.steering_noise_std > 0.0
        self.applied_pub = self.create_publisher(AckermannDriveStamped, "drive", QoSProfile(depth=10)) \
            if self.dart else None
        self.create_subscription(Path, "sim/track", self._on_track, QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.create_subscription(Odometry, "odom", self._on_odom, QoSProfile(depth=10))
        self.diagnostics = Diagnostics(self, "expert driver", self._diagnostic_report, hardware_id="sim")
        self.driver: ExpertDriver | None = None
        self.tracks_received = 0
        self.commands_sent = 0
        self.odom_without_track = 0
        self._last_reply: AckermannDriveStamped | None = None
        self._last_applied: AckermannDriveStamped | None = None

    def _on_track(self, msg: Path) -> None:
        centerline = centerline_from_path(msg)
        if len(centerline) < 3:
            self.get_logger().error(f"ignoring track with {len(centerline)} points")
            return
        self.driver = ExpertDriver(self.config, centerline, self.params.track_width)
        # Noise differs per episode but replays identically for the same run.
        self.driver.reset(noise_seed=self.config.noise_seed + self.tracks_received)
        self.tracks_received += 1
        self._last_reply = None

    def _on_odom(self, msg: Odometry) -> None:
        if self._last_reply is not None and self._last_reply.header.stamp == msg.header.stamp:
            self._publish(self._last_reply, self._last_applied)
            return
        if self.driver is None:
            self.odom_without_track += 1
            self.get_logger().warning("no track received yet: not driving", throttle_duration_sec=2.0)
            return
        pose, twist = msg.pose.pose, msg.twist.twist
        state = VehicleState(
            x=pose.position.x, y=pose.position.y, yaw=yaw_from_quaternion(pose.orientation),
            vx=twist.linear.x, vy=twist.linear.y, yaw_rate=twist.angular.z,
            ax=math.nan, ay=math.nan, speed=twist.linear.x, steering_angle=math.nan,
            tiles_visited=0, tiles_total=len(self.driver.speed_profile))
        steering, speed = self.driver.act(state)
        reply = _command(msg, steering, speed)
        applied = None
        if self.dart:  # the car executes the noisy command; the label is what the expert meant
            applied, reply = reply, _command(msg, self.driver.last_clean_steering, speed)
        self._publish(reply, applied)
        self._last_reply, self._last_applied = reply, applied
        self.commands_sent += 1

    def _publish(self, reply: AckermannDriveStamped, applied: AckermannDriveStamped | None) -> None:
        if applied is not None:
            self.applied_pub.publish(applied)
        self.drive_pub.publish(reply)

    def _diagnostic_report(self) -> tuple[dict, list[str]]:
        values = {"tracks_received": self.tracks_received, "commands_sent": self.commands_sent,
                  "odom_without_track": self.odom_without_track,
                  "steering_noise_std": self.config.steering_noise_std, "clean_labels": self.dart}
        return values, [] if self.driver is not None else ["waiting for sim/track"]

    def publish_safe_state(self) -> None:
        """Ctrl-C: command a stop so the last word on /teleop is not a speed."""
        stop = AckermannDriveStamped()
        stop.header.stamp = self.get_clock().now().to_msg()
        for pub in (self.applied_pub, self.drive_pub):
            if pub is not None:
                publish_delivered(self, pub, stop)  # delivered before the process ends


def _command(odom: Odometry, steering: float, speed: float) -> AckermannDriveStamped:
    """The command answering `odom`: its stamp, in its child frame."""
    msg = AckermannDriveStamped()
    msg.header.stamp = odom.header.stamp
    msg.header.frame_id = odom.child_frame_id
    msg.drive.steering_angle = float(steering)
    msg.drive.speed = float(speed)
    return msg


def main(args: list[str] | None = None) -> int:
    return run_node(ExpertNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
