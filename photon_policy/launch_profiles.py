"""`ros2 launch` side of the profiles: a LaunchDescription built from config/profiles.yaml.

An optional node (`optional: true` in the profile) gets a launch argument `with_<name>`
(default false) that starts it: `ros2 launch photon car.launch.py with_world_model:=true`.
"""
from __future__ import annotations

from photon_policy.profiles import load_profile


def generate_profile_launch_description(profile_name: str):
    # Imported here: `launch` and `launch_ros` exist only where ROS 2 is installed system-wide.
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    profile = load_profile(profile_name)
    entities = []
    for spec in profile.nodes:
        if spec.optional:
            arg = f"with_{spec.name}"
            entities.append(DeclareLaunchArgument(arg, default_value="false", description=f"start {spec.name}"))
            entities.append(Node(**spec.launch_kwargs(), condition=IfCondition(LaunchConfiguration(arg))))
        else:
            entities.append(Node(**spec.launch_kwargs()))
    return LaunchDescription(entities)
