"""Planar rotations as quaternions: tf_transformations on a robot with a system ROS 2, transforms3d here.

Both libraries compute the same Euler convention (static x-y-z, i.e. roll-pitch-yaw);
they differ only in the quaternion's element order, which `_quaternion_from_yaw` hides.
"""
from __future__ import annotations

import math

from geometry_msgs.msg import Quaternion

try:  # the ROS package (python3-tf-transformations); its quaternions are (x, y, z, w)
    from tf_transformations import euler_from_quaternion as _tf_euler
    from tf_transformations import quaternion_from_euler as _tf_quat

    BACKEND = "tf_transformations"

    def _quaternion_from_yaw(yaw: float) -> tuple[float, float, float, float]:
        x, y, z, w = _tf_quat(0.0, 0.0, yaw)
        return x, y, z, w

    def _yaw(x: float, y: float, z: float, w: float) -> float:
        return _tf_euler((x, y, z, w))[2]
except ImportError:  # transforms3d (PyPI); its quaternions are (w, x, y, z)
    from transforms3d.euler import euler2quat, quat2euler

    BACKEND = "transforms3d"

    def _quaternion_from_yaw(yaw: float) -> tuple[float, float, float, float]:
        w, x, y, z = euler2quat(0.0, 0.0, yaw, "sxyz")
        return x, y, z, w

    def _yaw(x: float, y: float, z: float, w: float) -> float:
        return quat2euler((w, x, y, z), "sxyz")[2]


def yaw_quaternion(yaw: float) -> Quaternion:
    """A rotation of `yaw` rad about z (REP-103: counter-clockwise seen from above)."""
    x, y, z, w = _quaternion_from_yaw(float(yaw))
    return Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))


def yaw_from_quaternion(q: Quaternion) -> float:
    """The heading (rad, in [-pi, pi]) of a rotation; roll and pitch are ignored."""
    norm = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w)
    if not norm > 0.0 or not math.isfinite(norm):
        raise ValueError(f"quaternion ({q.x}, {q.y}, {q.z}, {q.w}) has no direction")
    return float(_yaw(q.x / norm, q.y / norm, q.z / norm, q.w / norm))
