"""keyboard_teleop: drive /teleop from a terminal's arrow keys (see photon_policy.drivers.keyboard).

For a PC with a webcam and no car (the `webcam` profile's policy compares itself with this);
on a car, use the joystick and its deadman. Run it in its own terminal:
  keyboard_teleop --ros-args --params-file config/vehicle.yaml
Publishes:
  teleop   ackermann_msgs/AckermannDriveStamped at rate_hz
Quitting (q, Ctrl-C, SIGTERM, or the terminal closing) publishes a stop first.
"""
from __future__ import annotations

import os
import select
import sys
import termios
import time
import tty

from ackermann_msgs.msg import AckermannDriveStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile

from photon_policy.drivers.keyboard import KeyboardConfig, KeyboardTeleop, parse_keys
from photon_policy.drivers.vehicle import VehicleLimits
from photon_policy.ros.node_runtime import create_wall_timer, declare_config, publish_delivered, run_node

HELP = "arrows: speed / steering   space: stop   q: quit"


PARAMETERS = ((KeyboardConfig, ""), (VehicleLimits, ""))
"""Every parameter the node declares: (config dataclass, name prefix)."""


class KeyboardTeleopNode(Node):
    def __init__(self) -> None:
        super().__init__("keyboard_teleop")
        self.config = declare_config(self, KeyboardConfig)
        self.core = KeyboardTeleop(self.config, declare_config(self, VehicleLimits))
        self.pub = self.create_publisher(AckermannDriveStamped, "teleop", QoSProfile(depth=10))
        self.finished = False
        self.fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(self.fd) if os.isatty(self.fd) else None
        if self._saved is not None:
            tty.setcbreak(self.fd)  # keys without Enter; Ctrl-C still a signal
        print(HELP, file=sys.stderr)
        create_wall_timer(self, 1.0 / self.config.rate_hz, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        while select.select([self.fd], [], [], 0)[0]:
            data = os.read(self.fd, 64)
            if not data:  # the terminal went away
                self.core.key("quit", now)
                break
            for key in parse_keys(data):
                self.core.key(key, now)
        self.finished = self.core.quit
        steering, speed = self.core.command(now)
        self.pub.publish(self._message(steering, speed))
        print(f"\rspeed {speed:+5.2f} m/s  steering {steering:+5.2f} rad ", end="", file=sys.stderr, flush=True)

    def _message(self, steering: float, speed: float) -> AckermannDriveStamped:
        msg = AckermannDriveStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "base_link"
        msg.drive.steering_angle, msg.drive.speed = float(steering), float(speed)
        return msg

    def publish_safe_state(self) -> None:
        publish_delivered(self, self.pub, self._message(0.0, 0.0))
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        print(file=sys.stderr)


def main(args: list[str] | None = None) -> int:
    return run_node(KeyboardTeleopNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
