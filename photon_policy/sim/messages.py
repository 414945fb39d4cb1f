"""ROS messages of the simulated vehicle: filled from a VehicleState, nothing else.

Stamps, images and quaternions come from photon_policy.ros (shared with the car's nodes).

Camera model. CarRacing renders a top-down view that turns with the car: a
camera looking straight down from above a point ahead of the car, image top =
car forward. The render zoom (2.7 x SCALE px/m on the 1000 px window, scaled to
96 px) gives 1.5552 px/m, and the car sits a quarter of the image below the
centre. We publish that as a pinhole camera at CAMERA_HEIGHT_M whose focal
length reproduces that scale on the ground plane (an orthographic view is
pinhole-exact only for the ground plane, which is all the sim draws).
"""
from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, Quaternion, TransformStamped
from nav_msgs.msg import Odometry, Path
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Imu

from photon_msgs.msg import EpisodeStatus
from photon_policy.ros.transforms import yaw_quaternion
from photon_policy.sim.carracing import FRAME_SIZE, StepResult, VehicleState

PIXELS_PER_METRE = 2.7 * 6.0 * FRAME_SIZE / 1000.0
CAMERA_HEIGHT_M = 30.0
CAMERA_AHEAD_M = 0.25 * FRAME_SIZE / PIXELS_PER_METRE  # the car is drawn 1/4 image below centre
GRAVITY = 9.80665


def clock(stamp: Time) -> Clock:
    return Clock(clock=stamp)


def camera_info(stamp: Time, frame_id: str) -> CameraInfo:
    focal = PIXELS_PER_METRE * CAMERA_HEIGHT_M
    centre = FRAME_SIZE / 2.0
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height = msg.width = FRAME_SIZE
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [focal, 0.0, centre, 0.0, focal, centre, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [focal, 0.0, centre, 0.0, 0.0, focal, centre, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def odometry(state: VehicleState, stamp: Time, odom_frame: str, base_frame: str) -> Odometry:
    msg = Odometry()
    msg.header.stamp = stamp
    msg.header.frame_id = odom_frame
    msg.child_frame_id = base_frame
    msg.pose.pose.position.x = float(state.x)
    msg.pose.pose.position.y = float(state.y)
    msg.pose.pose.orientation = yaw_quaternion(state.yaw)
    msg.twist.twist.linear.x = float(state.vx)
    msg.twist.twist.linear.y = float(state.vy)
    msg.twist.twist.angular.z = float(state.yaw_rate)
    return msg


def odom_transform(state: VehicleState, stamp: Time, odom_frame: str, base_frame: str) -> TransformStamped:
    tf = TransformStamped()
    tf.header.stamp = stamp
    tf.header.frame_id = odom_frame
    tf.child_frame_id = base_frame
    tf.transform.translation.x = float(state.x)
    tf.transform.translation.y = float(state.y)
    tf.transform.rotation = yaw_quaternion(state.yaw)
    return tf


def camera_transforms(stamp: Time, base_frame: str, camera_link: str, optical_frame: str) -> list[TransformStamped]:
    """base_link -> camera_link (above the road ahead, pitched down 90 deg) -> optical frame (REP-103)."""
    mount = TransformStamped()
    mount.header.stamp = stamp
    mount.header.frame_id = base_frame
    mount.child_frame_id = camera_link
    mount.transform.translation.x = CAMERA_AHEAD_M
    mount.transform.translation.z = CAMERA_HEIGHT_M
    half = math.sqrt(0.5)
    mount.transform.rotation = Quaternion(x=0.0, y=half, z=0.0, w=half)
    optical = TransformStamped()
    optical.header.stamp = stamp
    optical.header.frame_id = camera_link
    optical.child_frame_id = optical_frame
    optical.transform.rotation = Quaternion(x=-0.5, y=0.5, z=-0.5, w=0.5)
    return [mount, optical]


def imu(state: VehicleState, stamp: Time, frame_id: str) -> Imu:
    """A planar IMU at base_link: specific force includes gravity, as a real one measures."""
    msg = Imu()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.orientation = yaw_quaternion(state.yaw)
    msg.angular_velocity.z = float(state.yaw_rate)
    msg.linear_acceleration.x = float(state.ax)
    msg.linear_acceleration.y = float(state.ay)
    msg.linear_acceleration.z = GRAVITY
    for cov in (msg.orientation_covariance, msg.angular_velocity_covariance, msg.linear_acceleration_covariance):
        cov[0] = cov[4] = cov[8] = 1e-6
    return msg


def track_path(centerline: np.ndarray, stamp: Time, frame_id: str) -> Path:
    msg = Path()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    for x, y in centerline:
        pose = PoseStamped()
        pose.header = msg.header
        pose.pose.position.x = float(x)
        pose.pose.position.y = float(y)
        pose.pose.orientation.w = 1.0
        msg.poses.append(pose)
    return msg


def centerline_from_path(path: Path) -> np.ndarray:
    return np.array([(p.pose.position.x, p.pose.position.y) for p in path.poses], dtype=np.float64)


def episode_status(seed: int, episode: int, result: StepResult | None, state: VehicleState,
                   stamp: Time, frame_id: str) -> EpisodeStatus:
    msg = EpisodeStatus()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.seed = seed
    msg.episode = episode
    msg.tiles_visited = int(state.tiles_visited)
    msg.tiles_total = int(state.tiles_total)
    if result is not None:
        msg.step = int(result.step)
        msg.reward = float(result.reward)
        msg.score = float(result.score)
        msg.terminated = bool(result.terminated)
        msg.truncated = bool(result.truncated)
        msg.done = msg.terminated or msg.truncated
        msg.reason = result.reason
    return msg
