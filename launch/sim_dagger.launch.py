"""ros2 launch photon sim_dagger.launch.py: the `sim-dagger` profile of config/profiles.yaml.

The policy drives the simulated car on /drive while the expert labels every frame on
/teleop (dataset aggregation; `photon collect --driver policy` records it). The nodes,
parameter files and remappings live in config/profiles.yaml, which `photon up sim-dagger`
reads too.
"""
from photon_policy.launch_profiles import generate_profile_launch_description


def generate_launch_description():
    return generate_profile_launch_description("sim-dagger")
