"""`photon play BAG`: a rosbag2 bag (MCAP or sqlite3) played into the ROS graph, like `ros2 bag play`.

Node `player` publishes:
  every bag topic (or `--topics`), renamed by `--remap OLD:=NEW`, with the QoS the bag recorded
    (reliability, durability, depth; reliable/volatile/10 where the bag holds none). The recorded
    CDR bytes go out as they are: nothing is deserialized.
  /clock  rosgraph_msgs/Clock, the bag's time at `--clock HZ`, so nodes with use_sim_time follow it.
Parameter `paused` (bool): `ros2 param set /player paused true|false` pauses and resumes (the
  parameter service, rcl_interfaces/SetParameters; std_srvs is not installed here). In a terminal,
  the space bar does the same.

Topics whose message type is not installed here are skipped and listed, not fatal; so are the
messages of a truncated bag past its damage. At the end (or on Ctrl-C / SIGTERM) it prints what
was published, the rate achieved and how far behind schedule the messages went out.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from photon_policy.bags.player import (CLOCK_TOPIC, PlayableBag, PlayControl, PlayOptions, PlayReport, QosRecord,
                                       play)
from photon_policy.bags.recorder_node import message_class

FLUSH_S = 2.0
"""At the end, how long reliable subscribers get to acknowledge the last messages."""


def qos_profile(record: QosRecord) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=record.depth,
                      reliability=ReliabilityPolicy.RELIABLE if record.reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if record.transient_local
                      else DurabilityPolicy.VOLATILE)


class PlayerNode(Node):
    """Publishers for a bag's topics and /clock; the `paused` parameter drives `control`."""

    def __init__(self, bag: PlayableBag, options: PlayOptions, control: PlayControl) -> None:
        super().__init__("player")
        self.control = control
        self.declare_parameter("paused", control.paused)
        self.add_on_set_parameters_callback(self._on_parameters)
        self.publishers_by_topic = {}
        for topic, info in list(bag.topics.items()):
            try:
                cls = message_class(info.msgtype)
            except (ImportError, AttributeError, ValueError):
                bag.skip(topic, f"message type {info.msgtype} is not installed here")
                continue
            self.publishers_by_topic[topic] = self.create_publisher(cls, options.published_name(topic),
                                                                    qos_profile(info.qos))
        self.clock_publisher = None
        if options.clock_hz > 0:
            from rosgraph_msgs.msg import Clock
            self._clock_msg = Clock()
            self.clock_publisher = self.create_publisher(Clock, CLOCK_TOPIC, 10)

    def _on_parameters(self, params: list) -> SetParametersResult:
        for p in params:
            if p.name == "paused":
                if not isinstance(p.value, bool):
                    return SetParametersResult(successful=False, reason="paused must be true or false")
                self.control.set_paused(p.value)
                print(f"[photon] {'paused' if p.value else 'playing'} (parameter)", flush=True)
        return SetParametersResult(successful=True)

    # Sink
    def publish(self, topic: str, data: bytes) -> None:
        publisher = self.publishers_by_topic.get(topic)
        if publisher is not None:
            publisher.publish(data)

    def clock(self, bag_ns: int) -> None:
        if self.clock_publisher is not None:
            self._clock_msg.clock.sec, self._clock_msg.clock.nanosec = divmod(bag_ns, 1_000_000_000)
            self.clock_publisher.publish(self._clock_msg)

    def flush(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s` in all) until reliable subscribers have acknowledged what was
        published: a writer destroyed at once would lose the last messages on their way."""
        deadline = time.monotonic() + timeout_s
        for publisher in [*self.publishers_by_topic.values(), *([self.clock_publisher] if self.clock_publisher
                                                                 else [])]:
            publisher.wait_for_all_acked(Duration(seconds=max(deadline - time.monotonic(), 0.01)))

    def unmatched(self) -> list[str]:
        """Published topics no subscriber has matched yet."""
        pubs = [*self.publishers_by_topic.values(), *([self.clock_publisher] if self.clock_publisher else [])]
        return [p.topic_name for p in pubs if p.get_subscription_count() == 0]


@contextmanager
def space_bar_toggles(control: PlayControl) -> Iterator[None]:
    """In a terminal, the space bar pauses and resumes (the terminal is restored on exit)."""
    if not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    done = threading.Event()

    def read_keys() -> None:
        while not done.is_set():
            if select.select([fd], [], [], 0.1)[0] and os.read(fd, 1) == b" ":
                control.toggle()
                print(f"[photon] {'paused' if control.paused else 'playing'}", flush=True)

    tty.setcbreak(fd, termios.TCSANOW)  # not the default TCSAFLUSH, which drops keys typed already
    thread = threading.Thread(target=read_keys, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=1.0)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def wait_for_subscribers(node: PlayerNode, control: PlayControl, timeout_s: float) -> list[str]:
    """Wait until every publisher has matched a subscriber (at most `timeout_s`); the topics still without."""
    deadline = time.monotonic() + timeout_s
    while (missing := node.unmatched()) and time.monotonic() < deadline and not control.stopped:
        control.wait(0.05)
    return missing


@contextmanager
def signals_stop(control: PlayControl) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM ends playback between two messages (the report still comes);
    a second one interrupts at once."""
    def on_signal(signum: int, frame: object) -> None:
        if control.stopped:
            raise KeyboardInterrupt
        control.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_player(bag: PlayableBag, options: PlayOptions, wait_subscribers_s: float = 0.0) -> PlayReport:
    """Play `bag` over DDS until its end, or a stop (Ctrl-C, SIGTERM)."""
    control = PlayControl(options.start_paused)
    with signals_stop(control):
        return _run(bag, options, control, wait_subscribers_s)


def _run(bag: PlayableBag, options: PlayOptions, control: PlayControl, wait_subscribers_s: float) -> PlayReport:
    # Not sys.argv: rcl would read `--remap a:=b` there as a ROS remap rule of its own.
    rclpy.init(args=["photon-play"], signal_handler_options=SignalHandlerOptions.NO)
    node = PlayerNode(bag, options, control)
    for skipped in bag.skipped:
        print(f"[photon] skipped {skipped}", flush=True)
    for problem in bag.problems:
        print(f"[photon] {problem}", flush=True)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    # Parameter (pause) requests are served beside playback, which keeps the main thread's timing.
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    result = PlayReport()
    try:
        if wait_subscribers_s > 0:
            missing = wait_for_subscribers(node, control, wait_subscribers_s)
            if missing:
                print(f"[photon] no subscriber after {wait_subscribers_s:g} s on: {', '.join(missing)}; "
                      "playing anyway", flush=True)
        if bag.messages:
            # Said only once the terminal reads single keys: a space typed on seeing it is never lost.
            with space_bar_toggles(control):
                if control.paused:
                    print("[photon] paused: press space, or `ros2 param set /player paused false`", flush=True)
                result = play(bag, options, node, control)
        node.flush(FLUSH_S)
    finally:
        control.stop()
        executor.shutdown(timeout_sec=1.0)
        spinner.join(timeout=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return result
