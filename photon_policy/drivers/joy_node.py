"""joy_node: a Linux joystick (/dev/input/jsN, or any file or pipe of js_event records) -> sensor_msgs/Joy.

Publishes:
  joy           sensor_msgs/Joy: on every change (as soon as it is read), and again at
                autorepeat_rate while the joystick is connected, so a listener can tell a
                live joystick that holds still from a dead one (joy_linux's behaviour)
  /diagnostics  1 Hz: connected, events, messages, reconnects, ignored events by reason
Parameters (config/joy_teleop.yaml, joy_linux names): dev, deadzone, autorepeat_rate,
max_axes, max_buttons, frame_id.

A device that cannot be opened, or disconnects (read error, or end of file: the writer of a
pipe went away), is reported and reopened with backoff; on a disconnect one Joy with every
button released and every axis centred is published, then nothing until it is back (a
teleop reading this sees the joystick go stale and commands zero). Ctrl-C / SIGTERM: the same
released Joy is the last word.
"""
from __future__ import annotations

import os
import select
import threading
from dataclasses import dataclass

from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Joy

from photon_policy.drivers.joystick import JoystickState
from photon_policy.ros.diagnostics import Diagnostics
from photon_policy.ros.node_runtime import create_wall_timer, declare_config, describe, publish_delivered, run_node

BACKOFF_MIN_S, BACKOFF_MAX_S = 0.1, 2.0


@dataclass
class JoyParams:
    dev: str = describe("/dev/input/js0", "joystick device, or any file or named pipe of js_event records")
    deadzone: float = describe(0.05, "axis values below this (of full scale) read as 0")
    autorepeat_rate: float = describe(20.0, "Hz: state republished while connected (0 = only on change)")
    max_axes: int = describe(8, "axes in every Joy message; events of higher axes are counted and ignored")
    max_buttons: int = describe(12, "buttons in every Joy message; higher ones are counted and ignored")
    frame_id: str = describe("joy", "header.frame_id")

    def __post_init__(self) -> None:
        if not self.dev:
            raise ValueError("dev must name a joystick device or file")
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"deadzone={self.deadzone} must be in [0, 1)")
        if self.autorepeat_rate < 0.0:
            raise ValueError(f"autorepeat_rate={self.autorepeat_rate} must be >= 0")
        if not (0 < self.max_axes <= 256 and 0 < self.max_buttons <= 256):
            raise ValueError("max_axes and max_buttons must be in 1..256 (js_event numbers are one byte)")


PARAMETERS = ((JoyParams, ""),)
"""Every parameter the node declares: (config dataclass, name prefix)."""


class JoyNode(Node):
    def __init__(self) -> None:
        super().__init__("joy")
        self.params = p = declare_config(self, JoyParams)
        self.state = JoystickState(p.max_axes, p.max_buttons, p.deadzone)
        self.pub = self.create_publisher(Joy, "joy", QoSProfile(depth=10))
        self.lock = threading.Lock()
        self.connected = False
        self.reconnects = 0
        self.messages = 0
        self.last_error = ""
        self.diagnostics = Diagnostics(self, "joystick", self._report, hardware_id=p.dev)
        if p.autorepeat_rate > 0.0:
            create_wall_timer(self, 1.0 / p.autorepeat_rate, self._repeat)
        self._running = True
        self._reader = threading.Thread(target=self._read_loop, name="joystick", daemon=True)
        self._reader.start()

    # --- the reader thread: open, read, reconnect -----------------------------------------------------
    def _read_loop(self) -> None:
        backoff = BACKOFF_MIN_S
        while self._running:
            try:
                fd = os.open(self.params.dev, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                self._fail(f"cannot open {self.params.dev}: {exc.strerror}")
                backoff = self._sleep(backoff)
                continue
            try:
                if self._read_until_gone(fd):
                    backoff = BACKOFF_MIN_S  # it was connected: retry quickly
            finally:
                os.close(fd)
            backoff = self._sleep(backoff)

    def _read_until_gone(self, fd: int) -> bool:
        """Read events until the device goes; returns whether any data came."""
        got_data = False
        while self._running:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(fd, 64 * 8)
            except BlockingIOError:
                continue
            except OSError as exc:  # ENODEV: unplugged
                self._disconnect(f"{self.params.dev}: {exc.strerror}")
                return got_data
            if not data:  # end of file: the writer of a pipe went away, or a file ended
                self._disconnect(f"{self.params.dev}: end of stream" if got_data else "")
                return got_data
            if not got_data:
                got_data = True
                with self.lock:
                    self.connected = True
                    self.reconnects += 1
                self.get_logger().info(f"joystick {self.params.dev} connected")
            with self.lock:
                changed = self.state.feed(data)
            if changed:
                self._publish()
        return got_data

    def _disconnect(self, why: str) -> None:
        with self.lock:
            was = self.connected
            self.connected = False
            self.state.release_all()
        if was:
            self.last_error = why
            self.get_logger().error(f"joystick lost ({why}): every button released; reconnecting")
            self._publish()

    def _fail(self, why: str) -> None:
        if why != self.last_error:
            self.get_logger().error(f"{why}; retrying with backoff")
        self.last_error = why

    def _sleep(self, backoff: float) -> float:
        end = backoff
        while self._running and end > 0:
            threading.Event().wait(min(end, 0.1))
            end -= 0.1
        return min(backoff * 2.0, BACKOFF_MAX_S)

    # --- publishing ---------------------------------------------------------------------------------
    def _message(self) -> Joy:
        with self.lock:
            msg = Joy(axes=list(self.state.axes), buttons=list(self.state.buttons))
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.params.frame_id
        return msg

    def _publish(self) -> None:
        self.pub.publish(self._message())
        self.messages += 1

    def _repeat(self) -> None:
        if self.connected:
            self._publish()

    def _report(self) -> tuple[dict, list[str]]:
        with self.lock:
            values = {"connected": self.connected, "events": self.state.events, "messages": self.messages,
                      "connections": self.reconnects,
                      **{f"ignored_{k}": v for k, v in self.state.ignored.items()}}
        problems = [] if self.connected else [f"joystick not connected ({self.last_error or 'no data yet'})"]
        if self.state.ignored:
            problems.append(f"{sum(self.state.ignored.values())} events ignored")
        return values, problems

    def publish_safe_state(self) -> None:
        """Every button released: a teleop listening commands zero at once."""
        self._running = False
        with self.lock:
            self.state.release_all()
        publish_delivered(self, self.pub, self._message())
        self.diagnostics.publish()

    def destroy_node(self) -> None:
        self._running = False
        if self._reader.is_alive():
            self._reader.join(timeout=1.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(JoyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
