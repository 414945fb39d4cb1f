"""ros2 launch photon car_shadow.launch.py: the `car-shadow` profile of config/profiles.yaml.

A human drives the car (teleop -> mux); the policy runs in shadow on /policy/drive and the shadow node logs clips where the two diverge.
The nodes, parameter files and remappings live in config/profiles.yaml, which
`photon up car-shadow` reads too. See docs/CAR.md for the car's wiring.
"""
from photon_policy.launch_profiles import generate_profile_launch_description


def generate_launch_description():
    return generate_profile_launch_description("car-shadow")
