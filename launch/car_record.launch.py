"""ros2 launch photon car_record.launch.py: the `car-record` profile of config/profiles.yaml.

A human drives the car with the joystick while a training bag is recorded (camera, IMU, odometry, commands).
The nodes, parameter files and remappings live in config/profiles.yaml, which
`photon up car-record` reads too. See docs/CAR.md for the car's wiring.
"""
from photon_policy.launch_profiles import generate_profile_launch_description


def generate_launch_description():
    return generate_profile_launch_description("car-record")
