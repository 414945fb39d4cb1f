"""ros2 launch photon sim.launch.py: the `sim` profile of config/profiles.yaml.

Simulated car driven by the privileged expert (it stands in for the human teleop driver).
The nodes, parameter files and remappings live in config/profiles.yaml, which
`photon up sim` reads too.
"""
from photon_policy.launch_profiles import generate_profile_launch_description


def generate_launch_description():
    return generate_profile_launch_description("sim")
