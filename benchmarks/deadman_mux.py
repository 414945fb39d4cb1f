"""Stop latencies through the real-car chain, over real DDS:

  deadman release: a js_event "LB released" written into the joystick pipe -> the first zero
                   command on ackermann_cmd (joy_node -> teleop_node -> mux_node -> probe)
  all stale:       the last message of every mux input (/drive and the deadman lock, published
                   by the probe) -> the first stop on ackermann_cmd (mux_node alone; the
                   inputs' timeout is 0.2 s, so ~200 ms of this is by design)

Each is repeated --trials times with a random pause in between. Prints JSON.
Targets (issue 11): deadman release -> zero within 60 ms; every input stale -> stop within 250 ms.

    .venv/bin/python benchmarks/deadman_mux.py [--trials 30]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from _car import Probe, start, stats_ms, stop


def deadman(probe: Probe, tmp: Path, trials: int) -> dict:
    from ackermann_msgs.msg import AckermannDriveStamped
    from photon_policy.drivers.joystick import JS_EVENT_AXIS, JS_EVENT_BUTTON, pack_event

    pipe = tmp / "js0"
    os.mkfifo(pipe)
    cmds = probe.subscribe(AckermannDriveStamped, "/ackermann_cmd")
    procs = [start("car", "joy", tmp / "joy.log", dev=str(pipe)), start("car", "joy_teleop", tmp / "teleop.log"),
             start("car", "ackermann_mux", tmp / "mux.log")]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        os.set_blocking(fd, True)
        latencies = []
        for _ in range(trials):
            os.write(fd, pack_event(JS_EVENT_BUTTON, 4, 1) + pack_event(JS_EVENT_AXIS, 1, -16384))
            probe.wait_for(lambda: cmds and cmds[-1][1].drive.speed > 0.4, 30, "LB driving")
            time.sleep(random.uniform(0.1, 0.3))
            with probe.lock:
                n = len(cmds)
            released = time.monotonic()
            os.write(fd, pack_event(JS_EVENT_BUTTON, 4, 0))
            probe.wait_for(lambda: any(m.drive.speed == 0.0 for _, m in cmds[n:]), 10, "zero after release")
            with probe.lock:
                first = next(t for t, m in cmds[n:] if m.drive.speed == 0.0)
            latencies.append(first - released)
            time.sleep(random.uniform(0.1, 0.3))
        os.close(fd)
    finally:
        codes = [stop(p) for p in procs]
    return {**stats_ms(latencies), "target_ms": 60, "exit_codes": codes}


def all_stale(probe: Probe, tmp: Path, trials: int) -> dict:
    from ackermann_msgs.msg import AckermannDriveStamped
    from std_msgs.msg import Bool

    cmds = probe.arrivals["/ackermann_cmd"]
    drive = probe.node.create_publisher(AckermannDriveStamped, "/drive", 10)
    lock = probe.node.create_publisher(Bool, "/autonomy_lock", 10)
    proc = start("car", "ackermann_mux", tmp / "mux2.log")
    latencies = []
    try:
        probe.wait_for(lambda: drive.get_subscription_count() > 0 and lock.get_subscription_count() > 0, 30, "mux")
        msg = AckermannDriveStamped()
        msg.drive.speed = 1.0
        for _ in range(trials):
            deadline = time.monotonic() + random.uniform(0.5, 1.0)
            while time.monotonic() < deadline or not (cmds and cmds[-1][1].drive.speed == 1.0):
                lock.publish(Bool(data=False))
                msg.header.stamp = probe.node.get_clock().now().to_msg()
                drive.publish(msg)
                last = time.monotonic()
                time.sleep(0.05)
            with probe.lock:
                n = len(cmds)
            probe.wait_for(lambda: any(m.drive.speed == 0.0 for _, m in cmds[n:]), 10, "stop after stale")
            with probe.lock:
                first = next(t for t, m in cmds[n:] if m.drive.speed == 0.0)
            latencies.append(first - last)
    finally:
        code = stop(proc)
    return {**stats_ms(latencies), "target_ms": 250, "input_timeout_ms": 200, "exit_code": code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="deadman_bench_"))
    probe = Probe()
    try:
        out = {"benchmark": "stop latencies through joy -> teleop -> mux -> ackermann_cmd",
               "deadman_release_to_zero": deadman(probe, tmp, args.trials),
               "all_inputs_stale_to_stop": all_stale(probe, tmp, args.trials)}
    finally:
        probe.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
