"""teleop_node: sensor_msgs/Joy -> /teleop with the F1TENTH deadman (see photon_policy.drivers.teleop).

Subscribes:
  joy             sensor_msgs/Joy
Publishes:
  teleop          ackermann_msgs/AckermannDriveStamped: with LB held, the stick's command; with
                  nothing held (or a stale or disconnected joystick), zero; at rate_hz, and at
                  once whenever the decision changes or the stick moves while LB is held (so a
                  released deadman reaches the mux without waiting for the next tick).
                  With RB held, nothing: /teleop goes stale and the mux passes /drive.
  autonomy_lock   std_msgs/Bool at rate_hz: false only while RB is held on a live joystick.
                  The mux's lock of that name (config/mux.yaml, timeout 0.2 s) keeps /drive
                  from the motors otherwise, so a teleop node that dies never hands the car
                  to autonomy (the F1TENTH stack would: its silence looks like RB).
  /diagnostics    1 Hz: mode, commands, stops by reason
Parameters: config/joy_teleop.yaml (TeleopConfig) and config/vehicle.yaml (limits).
Ctrl-C / SIGTERM: zero on teleop and true on autonomy_lock are the last words.
"""
from __future__ import annotations

import time

from ackermann_msgs.msg import AckermannDriveStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Joy
from std_msgs.msg import Bool

from photon_policy.drivers.teleop import AUTONOMOUS, MANUAL, STOP, Deadman, Decision, TeleopConfig
from photon_policy.drivers.vehicle import VehicleLimits
from photon_policy.ros.diagnostics import Diagnostics
from photon_policy.ros.node_runtime import create_wall_timer, declare_config, publish_delivered, run_node


PARAMETERS = ((TeleopConfig, ""), (VehicleLimits, ""))
"""Every parameter the node declares: (config dataclass, name prefix)."""


class TeleopNode(Node):
    def __init__(self) -> None:
        super().__init__("joy_teleop")
        self.config = declare_config(self, TeleopConfig)
        self.deadman = Deadman(self.config, declare_config(self, VehicleLimits))
        self.cmd_pub = self.create_publisher(AckermannDriveStamped, "teleop", QoSProfile(depth=10))
        self.lock_pub = self.create_publisher(Bool, "autonomy_lock", QoSProfile(depth=10))
        self.create_subscription(Joy, "joy", self._on_joy, QoSProfile(depth=10))
        self._axes: list[float] | None = None
        self._buttons: list[int] | None = None
        self._joy_time: float | None = None
        self._last: Decision | None = None
        self.commands = 0
        self.diagnostics = Diagnostics(self, "joystick teleop", self._report)
        create_wall_timer(self, 1.0 / self.config.rate_hz, self._tick)

    def _on_joy(self, msg: Joy) -> None:
        self._axes, self._buttons, self._joy_time = list(msg.axes), list(msg.buttons), time.monotonic()
        decision = self._decide()
        previous, self._last = self._last, decision
        if previous is None or decision.mode != previous.mode or decision.mode == MANUAL:
            self._send(decision)

    def _tick(self) -> None:
        self._last = decision = self._decide()
        self._send(decision)

    def _decide(self) -> Decision:
        age = None if self._joy_time is None else time.monotonic() - self._joy_time
        return self.deadman.decide(self._axes, self._buttons, age)

    def _send(self, decision: Decision) -> None:
        self.lock_pub.publish(Bool(data=decision.mode != AUTONOMOUS))
        if decision.mode != AUTONOMOUS:
            self.cmd_pub.publish(self._command(decision))
            self.commands += 1

    def _command(self, decision: Decision) -> AckermannDriveStamped:
        msg = AckermannDriveStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.config.frame_id
        msg.drive.steering_angle = float(decision.steering)
        msg.drive.speed = float(decision.speed)
        return msg

    def _report(self) -> tuple[dict, list[str]]:
        mode = self._last.mode if self._last else STOP
        values = {"mode": mode, "commands": self.commands,
                  **{f"stops_{k}": v for k, v in self.deadman.stops.items()}}
        reason = self._last.reason if self._last else "joystick_stale"
        return values, [f"zero command: {reason}"] if mode == STOP and reason else []

    def publish_safe_state(self) -> None:
        publish_delivered(self, self.lock_pub, Bool(data=True))
        publish_delivered(self, self.cmd_pub, self._command(Decision(STOP)))
        self.diagnostics.publish()


def main(args: list[str] | None = None) -> int:
    return run_node(TeleopNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
