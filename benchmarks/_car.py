"""What the car benchmarks share: a test video, node processes from a profile, a probe node
spinning on its own thread that stamps each message with its arrival time."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def write_video(path: Path, frames: int = 150, size: tuple[int, int] = (640, 480)) -> Path:
    """A moving noise pattern (MJPEG), so decoding and the models see real change."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) // 4 + 64
    for i in range(frames):
        writer.write(np.roll(base, 8 * i, axis=1))
    writer.release()
    return path


def stats_ms(values_s: list[float]) -> dict[str, Any]:
    a = np.asarray(values_s) * 1e3
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "max_ms": round(float(a.max()), 2)}


def start(profile: str, node: str, log: Path, **params: Any) -> subprocess.Popen:
    from photon_policy.launcher import start_node
    from photon_policy.profiles import load_profile, node_command

    return start_node(node_command(load_profile(profile).node(node), params), stdout=open(log, "wb"),
                      stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Probe:
    """An rclpy node spun on a background thread; `arrivals[topic]` holds (monotonic, msg)."""

    def __init__(self, name: str = "bench_probe") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"{name}_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.arrivals: dict[str, list] = {}
        self.lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running:
            self.executor.spin_once(timeout_sec=0.01)

    def subscribe(self, msg_type, topic: str, qos: Any = 10, raw: bool = False) -> list:
        box = self.arrivals.setdefault(topic, [])

        def on_msg(msg, box=box):
            now = time.monotonic()
            with self.lock:
                box.append((now, msg))
        self.node.create_subscription(msg_type, topic, on_msg, qos, raw=raw)
        return box

    def wait_for(self, condition, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.005)

    def close(self) -> None:
        import rclpy

        self._running = False
        self._thread.join()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
