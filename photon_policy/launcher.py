"""Runs a profile's nodes as processes where `ros2 launch` is not installed.

Each node gets its own process session so that a terminal Ctrl-C reaches only
the launcher, which then sends every node exactly one SIGINT: a second signal
would interrupt the node while it publishes its safe state. Nodes die with the
launcher: Linux sends each one SIGTERM when its parent process ends, however it
ends (SIGKILL included), so no node drives on with its parent gone.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Collection

from photon_policy.profiles import Profile, node_command


@dataclass
class NodeProcess:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()


PR_SET_PDEATHSIG = 1
# Resolved here, not in the forked child: a dlopen/dlsym there could wait forever on a loader lock
# that another thread of this process (photon eval --workers, Fast DDS) held at the fork.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent(parent_pid: int) -> None:
    """In a child before exec: SIGTERM this process when the parent dies (prctl PR_SET_PDEATHSIG),
    and exit at once if the parent is already gone (it may have died before the prctl).
    Linux counts the thread that started the child as its parent: start nodes from a thread that
    outlives them (photon eval's worker threads stop their nodes before they end)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        os._exit(1)


def start_node(argv: list[str], **popen: Any) -> subprocess.Popen:
    """A node process in its own session that dies with this one."""
    parent = os.getpid()
    return subprocess.Popen(argv, start_new_session=True, preexec_fn=lambda: die_with_parent(parent), **popen)


class ProfileProcesses:
    """Start, watch and stop the nodes of one profile."""

    def __init__(self, profile: Profile, overrides: dict[str, dict[str, Any]] | None = None,
                 log_dir: Path | None = None, with_nodes: list[str] | tuple[str, ...] = (),
                 domain_id: int | None = None) -> None:
        """`domain_id`: the nodes' ROS_DOMAIN_ID (default: this process's)."""
        overrides = overrides or {}
        selected = profile.selected(with_nodes)
        unknown = set(overrides) - {n.name for n in selected}
        if unknown:
            raise ValueError(f"profile '{profile.name}' has no node(s) {sorted(unknown)}")
        self.profile = profile
        self.nodes = [NodeProcess(spec.name, node_command(spec, overrides.get(spec.name)))
                      for spec in selected]
        self.log_dir = log_dir
        self.domain_id = domain_id
        self._logs: list[IO[bytes]] = []

    def start(self, names: Collection[str] | None = None) -> None:
        """Start the nodes named in `names` (default: all) that are not running yet."""
        env = {**os.environ, **({} if self.domain_id is None else {"ROS_DOMAIN_ID": str(self.domain_id)})}
        for node in self.nodes:
            if node.process is not None or (names is not None and node.name not in names):
                continue
            out: Any = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f"{node.name}.log", "wb")
                self._logs.append(out)
            node.process = start_node(node.argv, stdout=out, stderr=subprocess.STDOUT if out else None,
                                      env=env)

    def exited(self) -> list[NodeProcess]:
        return [n for n in self.nodes if n.returncode is not None]

    def wait_any(self, poll_s: float = 0.1) -> NodeProcess:
        """Block until some node exits; returns it."""
        while True:
            done = self.exited()
            if done:
                return done[0]
            time.sleep(poll_s)

    def stop(self, grace_s: float = 10.0) -> dict[str, int]:
        """SIGINT every running node once, wait, then escalate; returns exit codes by node."""
        for node in self.nodes:
            if node.returncode is None:
                node.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace_s
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                node.process.terminate()
                try:
                    node.process.wait(timeout=3.0)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()
        for log in self._logs:
            log.close()
        return {n.name: n.returncode for n in self.nodes}

    def log_tail(self, name: str, lines: int = 30) -> str:
        if self.log_dir is None:
            return ""
        path = self.log_dir / f"{name}.log"
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> "ProfileProcesses":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
