"""ros2 launch photon webcam.launch.py: the `webcam` profile of config/profiles.yaml.

The stack without a car - a webcam or video file, the world model and the policy in shadow (/policy/drive); no motors. Drive /teleop with keyboard_teleop to give the policy a driver to compare with.
The nodes, parameter files and remappings live in config/profiles.yaml, which
`photon up webcam` reads too. See docs/CAR.md for the car's wiring.
"""
from photon_policy.launch_profiles import generate_profile_launch_description


def generate_launch_description():
    return generate_profile_launch_description("webcam")
