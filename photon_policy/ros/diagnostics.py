"""One /diagnostics status per node: a 1 Hz wall-clock timer publishes what `report` returns.

`report()` -> (values, problems): values become KeyValue pairs (sorted by key), and any
problem makes the level WARN with the problems joined as the message ("ok" otherwise).
"""
from __future__ import annotations

from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile

Report = Callable[[], tuple[dict[str, Any], list[str]]]


def status(name: str, hardware_id: str, values: dict[str, Any], problems: list[str]) -> DiagnosticStatus:
    level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
    return DiagnosticStatus(level=level, name=name, hardware_id=hardware_id, message="; ".join(problems) or "ok",
                            values=[KeyValue(key=str(k), value=str(v)) for k, v in sorted(values.items())])


class Diagnostics:
    """The node's /diagnostics publisher and its timer; `publish()` also sends one at once."""

    def __init__(self, node: Node, what: str, report: Report, hardware_id: str = "",
                 period_s: float = 1.0) -> None:
        self.node = node
        self.name = f"{node.get_name()}: {what}"
        self.hardware_id = hardware_id
        self.report = report
        self.publisher = node.create_publisher(DiagnosticArray, "/diagnostics", QoSProfile(depth=10))
        # Steady clock: diagnostics must keep coming while sim time stands still.
        node.create_timer(period_s, self.publish, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def publish(self) -> None:
        values, problems = self.report()
        msg = DiagnosticArray(status=[status(self.name, self.hardware_id, values, problems)])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.publisher.publish(msg)
