"""What every Photon node shares: parameters declared from a config dataclass,
and a `main` that publishes the node's safe state on Ctrl-C/SIGTERM.

rclpy (since Humble) shuts the context down on SIGINT before `finally` blocks
run, so a stop command published there is silently lost. We therefore
initialise with `SignalHandlerOptions.NO`, let SIGINT/SIGTERM end the spin loop
between callbacks, publish the safe state while the context is still alive, and
only then shut down. The signal only sets a flag: raised as KeyboardInterrupt
inside a callback, it can surface as some other error (rclpy's C++ message
conversion turns it into a RuntimeError) and lose the safe state. A second
signal raises KeyboardInterrupt at once.
"""
from __future__ import annotations

import array
import dataclasses
import gc
import signal
import sys
import time
from typing import Any, Callable, TypeVar

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from photon_policy.config_files import describe  # noqa: F401  (re-exported: nodes import it from here)

ConfigT = TypeVar("ConfigT")


class ConfigError(ValueError):
    """A parameter value a node cannot run with; the message names it."""


def declare_config(node: Node, config_cls: type[ConfigT], prefix: str = "") -> ConfigT:
    """Declare one ROS parameter per dataclass field and build the config from their values.

    The dataclass's own validation (`__post_init__`) runs on the result, so a bad value in
    YAML or on the command line is reported as a ConfigError naming the parameter.
    """
    values = {}
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        name = f"{prefix}{f.name}"
        if node.has_parameter(name):  # declared already (automatically_declare_parameters_from_overrides)
            value = node.get_parameter(name).value
        else:
            # rclpy types a parameter from its default and raises InvalidParameterTypeException (a
            # crash at start-up, naming nothing we wrote) for an override of another type, e.g.
            # `rate_hz:=20` for a float. Dynamic typing lets any value through to the check below,
            # which converts an integer for a float and names the parameter for anything else.
            descriptor = ParameterDescriptor(description=f.metadata.get("description", ""), dynamic_typing=True)
            value = node.declare_parameter(name, default, descriptor).value
        if isinstance(default, list) and isinstance(value, array.array):
            value = list(value)  # array parameters come back as array.array
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # YAML `1` for a float parameter is a user's habit, not an error
        if type(value) is not type(default):
            raise ConfigError(f"parameter '{name}' must be {type(default).__name__}, got {value!r}")
        values[f.name] = value
    try:
        return config_cls(**values)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{prefix}{exc}" if prefix else str(exc)) from exc


def create_wall_timer(node: Node, period_s: float, callback: Callable[[], None]):
    """A timer on the steady clock: diagnostics, watchdogs and pacing must keep running when
    sim time stands still (no /clock yet, or a paused simulator)."""
    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))


def publish_delivered(node: Node, publisher: Any, msg: Any, timeout_s: float = 1.0) -> None:
    """Publish `msg` and wait until every subscriber has it (a node's last word before exiting).

    A reliable writer only delivers to readers it has matched, and wait_for_all_acked only
    waits for those: a subscriber that DDS has not matched yet, or that this process has not
    even discovered yet (discovery is not symmetric: the other side may already list this
    publisher), would miss a stop published at once. So first wait, up to timeout_s, until
    the writer has matched every subscription the graph lists, and at least one."""
    deadline = time.monotonic() + timeout_s
    while (publisher.get_subscription_count() < max(node.count_subscribers(publisher.topic_name), 1)
           and time.monotonic() < deadline):
        time.sleep(0.01)
    publisher.publish(msg)
    publisher.wait_for_all_acked(Duration(seconds=max(deadline - time.monotonic(), 0.1)))


class _StopRequest:
    """Signal handler: the first SIGINT/SIGTERM asks the spin loop to end, a second interrupts."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def events_executor() -> Callable[[], Any]:
    """rclpy's EventsExecutor where it exists (Jazzy and newer), else the SingleThreadedExecutor
    (Humble). The default executor rebuilds its wait set in Python on every spin: at 50 Hz on
    eight topics ~12 % of a core for the shadow node, ~5 % with the events executor
    (benchmarks/shadow_node.py); in the lockstep loop 40 % of the policy node's samples
    (docs/EVAL_SPEED.md)."""
    try:
        from rclpy.experimental import EventsExecutor
        return EventsExecutor
    except ImportError:
        return SingleThreadedExecutor


def run_node(node_factory: Callable[[], Node], args: list[str] | None = None,
             executor_factory: Callable[[], Any] = SingleThreadedExecutor) -> int:
    """Spin a node until Ctrl-C, SIGTERM or the node sets `finished`; returns an exit code.
    `executor_factory`: e.g. rclpy's EventsExecutor for a node whose CPU is mostly executor overhead."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = _StopRequest()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    node = None
    code = 0
    try:
        node = node_factory()
        executor = executor_factory()
        executor.add_node(node)
        # Start-up's objects (modules, the model) never die: out of the collector's reach, its
        # full passes stay short instead of pausing a callback for milliseconds now and then.
        gc.collect()
        gc.freeze()
        # A node ends itself (e.g. the simulator after its last episode) by setting `finished`.
        while rclpy.ok() and not stop.requested and not getattr(node, "finished", False):
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ConfigError as exc:
        print(f"[photon] configuration error: {exc}", file=sys.stderr)
        code = 2
    finally:
        if node is not None:
            if rclpy.ok() and hasattr(node, "publish_safe_state"):
                node.publish_safe_state()
            code = code or getattr(node, "exit_code", 0)
            node.destroy_node()
        rclpy.try_shutdown()
    return code
