"""ros2 launch photon sim_world_model.launch.py: the `sim-world-model` profile of config/profiles.yaml.

Expert drives the simulated car while the world model imagines the next 0.5 s.
The nodes, parameter files and remappings live in config/profiles.yaml, which
`photon up sim-world-model` reads too.
"""
from photon_policy.launch_profiles import generate_profile_launch_description


def generate_launch_description():
    return generate_profile_launch_description("sim-world-model")
