"""The shadow node's CDR field readers agree with rclpy's own serialization."""
from __future__ import annotations

import pytest
from ackermann_msgs.msg import AckermannDriveStamped
from nav_msgs.msg import Odometry
from rclpy.serialization import serialize_message
from tf2_msgs.msg import TFMessage
from geometry_msgs.msg import TransformStamped

from photon_policy.shadow import cdr


@pytest.mark.parametrize("frame_id", ["", "b", "base_link", "a_frame_name_of_odd_length"])
def test_drive_and_odometry_fields_read_from_bytes(frame_id):
    msg = AckermannDriveStamped()
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = 12, 340_000_000, frame_id
    msg.drive.steering_angle, msg.drive.speed, msg.drive.steering_angle_velocity = -0.25, 42.5, 9.0
    data = serialize_message(msg)
    assert cdr.stamp_ns(data) == 12_340_000_000
    stamp, steering, speed = cdr.drive(data)
    assert (stamp, steering, speed) == (pytest.approx(12.34), -0.25, 42.5)
    odom = Odometry()
    odom.header.frame_id, odom.child_frame_id = frame_id, frame_id + "xyz"
    odom.pose.pose.position.x, odom.twist.twist.linear.x, odom.twist.twist.linear.y = 5.0, 31.25, -2.0
    odom.pose.covariance[35] = 7.0
    assert cdr.odom_forward_speed(serialize_message(odom)) == 31.25


def test_tf_stamp_is_its_first_transform_s():
    assert cdr.stamp_ns(serialize_message(TFMessage()), first_in_sequence=True) is None
    t = TransformStamped()
    t.header.stamp.sec, t.header.stamp.nanosec = 3, 5
    assert cdr.stamp_ns(serialize_message(TFMessage(transforms=[t])), first_in_sequence=True) == 3_000_000_005
