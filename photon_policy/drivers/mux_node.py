"""mux_node: the one node that talks to the motors (ackermann_mux semantics, made safe).

Subscribes (config/mux.yaml, F1TENTH layout):
  topics.<name>.topic   ackermann_msgs/AckermannDriveStamped, e.g. /teleop (priority 100,
                        timeout 0.2 s) and /drive (priority 10, timeout 0.2 s)
  locks.<name>.topic    std_msgs/Bool: true blocks every input of lower or equal priority;
                        with a timeout > 0, silence blocks too (a dead e-stop stops the car)
Publishes:
  ackermann_cmd         ackermann_msgs/AckermannDriveStamped, the selected input's message as it
                        came, on its arrival; a stop (speed 0, steering 0, stamped now) at
                        stop_rate_hz while nothing is selected, and at once when a selected
                        input's message is refused (any field non-finite, or steering or speed
                        outside config/vehicle.yaml)
  /diagnostics          1 Hz: active input, switches between inputs, refused messages by
                        input and reason, stops published
Parameters: topics.*, locks.*, check_rate_hz, stop_rate_hz, frame_id (mux.yaml) and the
vehicle limits (vehicle.yaml). Ctrl-C or SIGTERM: a stop is the last word on ackermann_cmd.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ackermann_msgs.msg import AckermannDriveStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile
from std_msgs.msg import Bool

from photon_policy.drivers.mux import MuxCore, Selection, sources_from_parameters
from photon_policy.drivers.vehicle import VehicleLimits
from photon_policy.ros.diagnostics import Diagnostics
from photon_policy.ros.node_runtime import (ConfigError, create_wall_timer, declare_config, describe,
                                            publish_delivered, run_node)


@dataclass
class MuxParams:
    check_rate_hz: float = describe(50.0, "staleness checks per second (a stale input is noticed within 1/rate)")
    stop_rate_hz: float = describe(20.0, "stops per second on ackermann_cmd while no input is selected")
    frame_id: str = describe("base_link", "header.frame_id of the mux's own stops")

    def __post_init__(self) -> None:
        for name in ("check_rate_hz", "stop_rate_hz"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")


# No PARAMETERS list (the profile check of parameter names): topics.<name>.* and locks.<name>.*
# are names the user chooses, as in ackermann_mux; sources_from_parameters names what is missing.


class MuxNode(Node):
    def __init__(self) -> None:
        # topics.* and locks.* are a map whose keys the user chooses (as in ackermann_mux):
        # they are taken from the parameter file as given.
        super().__init__("ackermann_mux", automatically_declare_parameters_from_overrides=True)
        self.params = declare_config(self, MuxParams)
        limits = declare_config(self, VehicleLimits)
        flat = {f"{kind}.{key}": p.value for kind in ("topics", "locks")
                for key, p in self.get_parameters_by_prefix(kind).items()}
        try:
            inputs = sources_from_parameters(flat, "topics")
            locks = sources_from_parameters(flat, "locks")
            self.core = MuxCore(inputs, locks, limits)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        self.cmd_pub = self.create_publisher(AckermannDriveStamped, "ackermann_cmd", QoSProfile(depth=10))
        for source in inputs:
            self.create_subscription(AckermannDriveStamped, source.topic,
                                     lambda msg, name=source.name: self._on_command(name, msg), QoSProfile(depth=10))
        for lock in locks:
            self.create_subscription(Bool, lock.topic, lambda msg, name=lock.name: self._on_lock(name, msg),
                                     QoSProfile(depth=10))
        self.forwarded = 0
        self.stops = 0
        self._last_stop = 0.0
        self.diagnostics = Diagnostics(self, "command mux", self._report)
        create_wall_timer(self, 1.0 / self.params.check_rate_hz, self._check)
        self.get_logger().info(
            "inputs " + ", ".join(f"{s.name} {s.topic} (priority {s.priority}, {s.timeout} s)" for s in inputs)
            + ("; locks " + ", ".join(f"{s.name} {s.topic}" for s in locks) if locks else "")
            + f"; limits +-{limits.max_steering_angle} rad, {-limits.max_reverse_speed}..{limits.max_speed} m/s")

    def _on_command(self, name: str, msg: AckermannDriveStamped) -> None:
        now = time.monotonic()
        d = msg.drive
        reason = self.core.on_command(name, msg, d.steering_angle, d.speed, now,
                                      (d.steering_angle_velocity, d.acceleration, d.jerk))
        if reason:
            self.get_logger().warning(f"refused {name} command (steering {msg.drive.steering_angle}, speed "
                                      f"{msg.drive.speed}): {reason}", throttle_duration_sec=1.0)
        selection = self.core.select(now)
        if selection.input == name:
            self._emit(selection, now)

    def _on_lock(self, name: str, msg: Bool) -> None:
        now = time.monotonic()
        self.core.on_lock(name, msg.data, now)
        self._check()

    def _check(self) -> None:
        """Timer: when the selection has gone (stale inputs, a lock), stops at stop_rate_hz."""
        now = time.monotonic()
        selection = self.core.select(now)
        if selection.input is None and now - self._last_stop >= 1.0 / self.params.stop_rate_hz:
            self._emit(selection, now)

    def _emit(self, selection: Selection, now: float) -> None:
        if selection.forward is not None:
            self.cmd_pub.publish(selection.forward)
            self.forwarded += 1
        else:
            self.cmd_pub.publish(self.stop_message())
            self.stops += 1
            self._last_stop = now

    def stop_message(self) -> AckermannDriveStamped:
        msg = AckermannDriveStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.params.frame_id
        return msg

    def _report(self) -> tuple[dict, list[str]]:
        now = time.monotonic()
        locks = self.core.engaged_locks(now)
        values = {"active_input": self.core.active or "none (stop)", "forwarded": self.forwarded,
                  "stops": self.stops, "switches": sum(self.core.switches.values()),
                  "refused": sum(self.core.refused.values()), "engaged_locks": ",".join(locks) or "none",
                  **{f"switches {k}": v for k, v in self.core.switches.items()},
                  **{f"refused {k}": v for k, v in self.core.refused.items()}}
        problems = []
        if self.core.active is None:
            problems.append("no fresh input: commanding stop" + (f" (locked: {', '.join(locks)})" if locks else ""))
        if self.core.refused:
            problems.append(f"{sum(self.core.refused.values())} commands refused")
        return values, problems

    def publish_safe_state(self) -> None:
        publish_delivered(self, self.cmd_pub, self.stop_message())
        self.diagnostics.publish()


def main(args: list[str] | None = None) -> int:
    return run_node(MuxNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
