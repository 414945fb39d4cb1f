"""ros2 launch photon car.launch.py: the `car` profile of config/profiles.yaml.

The policy drives the car on /drive through the mux; the joystick's deadman decides (LB by hand, RB autonomy, neither stops).
The nodes, parameter files and remappings live in config/profiles.yaml, which
`photon up car` reads too. See docs/CAR.md for the car's wiring.
"""
from photon_policy.launch_profiles import generate_profile_launch_description


def generate_launch_description():
    return generate_profile_launch_description("car")
