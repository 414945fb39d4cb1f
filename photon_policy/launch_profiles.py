"""`ros2 launch` side of the profiles: a LaunchDescription built from config/profiles.yaml."""
from __future__ import annotations

from photon_policy.profiles import load_profile


def generate_profile_launch_description(profile_name: str):
    # Imported here: `launch` and `launch_ros` exist only where ROS 2 is installed system-wide.
    from launch import LaunchDescription
    from launch_ros.actions import Node

    profile = load_profile(profile_name)
    return LaunchDescription([Node(**spec.launch_kwargs()) for spec in profile.nodes])
