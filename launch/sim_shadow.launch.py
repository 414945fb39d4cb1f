"""ros2 launch photon sim_shadow.launch.py: the `sim-shadow` profile of config/profiles.yaml.

Expert drives the simulated car; the policy runs beside it in shadow mode and never reaches /drive.
The nodes, parameter files and remappings live in config/profiles.yaml, which
`photon up sim-shadow` reads too.
"""
from photon_policy.launch_profiles import generate_profile_launch_description


def generate_launch_description():
    return generate_profile_launch_description("sim-shadow")
