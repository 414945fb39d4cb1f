"""ament_python package `photon`: installs with colcon on a robot, or with pip into .venv."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "photon"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["photon_policy", "photon_policy.*",
                                    "world_model_node", "world_model_node.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/rviz", glob("rviz/*.rviz")),
        (f"share/{PACKAGE}/models", glob("models/*.pt")),
    ],
    include_package_data=True,
    install_requires=["setuptools", "numpy", "pyyaml"],
    zip_safe=True,
    maintainer="Photon developers",
    maintainer_email="dev@photon.invalid",
    description="Photons in, controls out: camera-to-Ackermann driving stack for ROS 2.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "photon = photon_policy.cli:main",
            "simulator_node = photon_policy.sim.simulator_node:main",
            "expert_node = photon_policy.expert.expert_node:main",
            "world_model_node = world_model_node.node:main",
            "policy_node = photon_policy.policy.node:main",
            "recorder_node = photon_policy.bags.recorder_node:main",
            "camera_node = photon_policy.drivers.camera_node:main",
            "joy_node = photon_policy.drivers.joy_node:main",
            "teleop_node = photon_policy.drivers.teleop_node:main",
            "keyboard_teleop = photon_policy.drivers.keyboard_teleop_node:main",
            "mux_node = photon_policy.drivers.mux_node:main",
            "shadow_node = photon_policy.shadow.node:main",
        ],
    },
)
