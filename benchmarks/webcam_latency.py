"""Webcam profile: camera frame -> /policy/drive latency at 640x480, resize included.

`photon up webcam` plays a 640x480 video file (looping, 30 frames/s) through camera_node into
the world model and the policy (shadow), as on a PC with a webcam. Every /policy/drive command
carries its camera frame's stamp, which is the frame's capture time on this machine's clock:
latency = the command's arrival at a probe - that stamp. It spans the camera's publish, DDS,
the policy's decode + resize to its 64 px input + inference, DDS again. The policy's own
callback time (from its /diagnostics) is reported beside it. Prints JSON.
Target (issue 11): p99 <= 15 ms.

    .venv/bin/python benchmarks/webcam_latency.py [--commands 600] [--transport raw|compressed]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _car import Probe, stats_ms, stop, write_video

WARMUP = 60
"""Commands before timing starts (the policy's context, TorchScript's first calls)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=600)
    parser.add_argument("--transport", choices=["raw", "compressed"], default="raw")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="passed to photon up (e.g. world_model.threads=1)")
    args = parser.parse_args()

    from ackermann_msgs.msg import AckermannDriveStamped
    from diagnostic_msgs.msg import DiagnosticArray
    from photon_policy.launcher import start_node

    tmp = Path(tempfile.mkdtemp(prefix="webcam_bench_"))
    video = write_video(tmp / "clip.avi", frames=300)
    probe = Probe()
    commands = probe.subscribe(AckermannDriveStamped, "/policy/drive")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    extra = [arg for item in args.set for arg in ("--set", item)]
    extra += [] if args.transport == "raw" else [
        "--set", "camera.publish_compressed=true", "--set", "policy.image_transport=compressed",
        "--set", "world_model.image_transport=compressed"]
    proc = start_node([sys.executable, "-m", "photon_policy.cli", "up", "webcam", "--set",
                       f"camera.video_device={video}", "--set", "camera.loop=true", *extra],
                      stdout=open(tmp / "photon.log", "wb"), stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        probe.wait_for(lambda: len(commands) >= WARMUP + args.commands, 120 + args.commands / 10, "commands")
    finally:
        code = stop(proc)
        probe.close()
    wall_minus_monotonic = time.time() - time.monotonic()
    latencies = [(t + wall_minus_monotonic) - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9)
                 for t, m in commands[WARMUP:WARMUP + args.commands]]
    policy = {}
    for _, array in reversed(diags):
        status = next((s for s in array.status if s.name.startswith("policy")), None)
        if status is not None:
            policy = {kv.key: kv.value for kv in status.values}
            break
    print(json.dumps({
        "benchmark": f"webcam profile, 640x480 camera frame -> /policy/drive ({args.transport})",
        "settings": args.set,
        "frame_to_command": stats_ms(latencies), "target_p99_ms": 15,
        "policy_callback_ms_p50": policy.get("callback_ms_p50"), "policy_callback_ms_p99": policy.get("callback_ms_p99"),
        "policy_inference_ms_p99": policy.get("inference_ms_p99"),
        "policy_dropped_frames": policy.get("dropped_frames"), "photon_exit_code": code,
    }, indent=1))


if __name__ == "__main__":
    main()
