"""ros2 launch photon sim_policy.launch.py: the `sim-policy` profile of config/profiles.yaml.

Simulated car driven by the learned policy (camera, IMU, odometry in; /drive out).
The nodes, parameter files and remappings live in config/profiles.yaml, which
`photon up sim-policy` reads too.
"""
from photon_policy.launch_profiles import generate_profile_launch_description


def generate_launch_description():
    return generate_profile_launch_description("sim-policy")
