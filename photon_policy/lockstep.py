"""A run of profile nodes driven to an end from this process: what `photon eval` and `photon collect` share.

The nodes run as processes (ProfileProcesses, each with its log file); this process
joins the same DDS graph with a monitor node of its own, in a private rclpy context
with no signal handlers (Ctrl-C and SIGTERM reach our own code, which stops the nodes).
`spin_until` waits for a condition while checking that no node crashed (the error
carries the end of its log) and that the episode statuses keep coming.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Collection

import rclpy
import rclpy.executors
import rclpy.signals
from rclpy.node import Node

from photon_policy.launcher import ProfileProcesses


class RunError(RuntimeError):
    """A node crashed, the run stalled, or a wait ran out; the message says which, with the logs' place."""


class LockstepRun:
    """`with LockstepRun(monitor_factory, log_dir) as run:` then `run.start(processes...)` and
    `run.spin_until(...)`; leaving the block stops every node (SIGINT, then escalation) and the graph."""

    def __init__(self, monitor_factory: Callable[[rclpy.Context], Node], log_dir: Path | None = None,
                 prefix: str = "photon-run-", domain_id: int | None = None) -> None:
        """`domain_id`: the monitor's ROS_DOMAIN_ID (default: this process's), that of the nodes it watches."""
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix=prefix))
        self._monitor_factory = monitor_factory
        self._domain_id = domain_id
        self.processes: list[ProfileProcesses] = []
        self.monitor: Node | None = None
        # A self-contained run: keep discovery on this machine unless the caller chose otherwise.
        os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

    def __enter__(self) -> "LockstepRun":
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=self._domain_id, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        try:
            self.monitor = self._monitor_factory(self.context)
            self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
            self.executor.add_node(self.monitor)
        except BaseException:
            rclpy.try_shutdown(context=self.context)
            raise
        return self

    def start(self, *processes: ProfileProcesses, names: Collection[str] | None = None) -> None:
        """Start the groups' nodes (only those in `names`, if given); leaving the run stops them."""
        for group in processes:
            if group not in self.processes:
                self.processes.append(group)
            group.start(names)

    def check_nodes(self) -> None:
        """RunError for the first node that exited with a non-zero code."""
        for group in self.processes:
            crashed = [n for n in group.exited() if n.returncode != 0]
            if crashed:
                node = crashed[0]
                raise RunError(f"node '{node.name}' exited with code {node.returncode} (logs in {self.log_dir}):\n"
                               f"{group.log_tail(node.name)}")

    def spin_until(self, done: Callable[[], bool], timeout_s: float, what: str,
                   check: Callable[[], None] = lambda: None, detail: Callable[[], str] = str) -> None:
        """Spin the monitor until done(); RunError if a node crashes, `check` raises, or timeout_s passes."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise RunError(f"timed out after {timeout_s:.0f} s waiting for {what}{detail()} "
                               f"(logs in {self.log_dir})")
            self.executor.spin_once(timeout_sec=0.05)
            self.check_nodes()
            check()

    def stall_check(self, last_progress: Callable[[], float | None], stall_timeout_s: float,
                    what: str = "episode status") -> Callable[[], None]:
        """A `check` for spin_until: RunError when nothing has progressed for stall_timeout_s."""
        started = time.monotonic()

        def check() -> None:
            if time.monotonic() - (last_progress() or started) > stall_timeout_s:
                raise RunError(f"no {what} for {stall_timeout_s:.0f} s (logs in {self.log_dir})")
        return check

    def __exit__(self, *exc: object) -> None:
        for group in reversed(self.processes):
            group.stop()
        self.executor.shutdown()
        if self.monitor is not None:
            self.monitor.destroy_node()
        rclpy.try_shutdown(context=self.context)
