"""Issue 14 over DDS: what a hostile or careless outside did to running nodes, kept fixed.

Zero-size frames to both model nodes (finding 1), integer values for float parameters
(finding 7), a command older than the one in force (finding 9), and SIGTERM/SIGKILL to the
`photon` processes that run nodes (finding 3): real processes, real rclpy over Fast DDS.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image

from photon_policy.bags.reader import list_bags, read_episodes
from photon_policy.policy.checkpoint import save_policy
from photon_policy.policy.model import DrivingPolicy
from photon_policy.ros.images import image_message
from photon_policy.ros.stamps import seconds_from_stamp, stamp_from_seconds
from conftest import tiny_world_model, wait_until

SIZE = 32
PHOTON = [sys.executable, "-m", "photon_policy.cli"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    wm_path = tiny_world_model(root, SIZE)
    return {"wm": wm_path, "policy": save_policy(root / "policy.pt", DrivingPolicy.from_world_model(wm_path, head_width=16))}


def values_of(diags, node_suffix: str) -> dict[str, str]:
    """The newest diagnostic values of the status whose name ends with node_suffix."""
    for array in reversed(diags):
        for status in array.status:
            if status.name.endswith(node_suffix):
                return {kv.key: kv.value for kv in status.values}
    return {}


def empty_image(width: int, height: int, stamp_s: float) -> Image:
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3, data=[])
    msg.header.stamp = stamp_from_seconds(stamp_s)
    return msg


def test_zero_size_frames_are_counted_drops_in_both_model_nodes(tiny, nodes, probe):
    # max_speed=50: an integer for a float parameter (finding 7) must not stop the node either.
    policy = nodes.start("sim-policy", "policy", checkpoint=str(tiny["policy"]), use_sim_time=False, max_speed=50)
    world = nodes.start("sim-world-model", "world_model", checkpoint=str(tiny["wm"]), rate_hz=0.0,
                        use_sim_time=False)
    camera = probe.publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
    drive = probe.subscribe(AckermannDriveStamped, "/drive")
    predictions = probe.subscribe(Image, "/world_model/prediction")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    probe.wait_for(lambda: camera.get_subscription_count() >= 2, 60, "both model nodes up")
    rng = np.random.default_rng(0)
    t = 100.0

    def good_frames(n: int) -> list[float]:
        nonlocal t
        sent = []
        for _ in range(n):
            camera.publish(image_message(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8),
                                         stamp_from_seconds(t), "camera_optical_frame"))
            sent.append(round(t, 6))
            t += 0.02
            probe.spin(0.02)
        return sent

    # Discovery done both ways: the policy answers and the world model predicts.
    probe.wait_for(lambda: good_frames(5) and drive and predictions, 60, "answers to good frames")
    for width, height in ((0, 0), (0, 96), (96, 0)):
        camera.publish(empty_image(width, height, t))
        t += 0.02
        probe.spin(0.05)
    drive.clear()
    predictions.clear()
    # Best-effort frames can be dropped by a busy node: keep sending good frames until one sent
    # after the empty ones is answered (not until each of a fixed few is).
    sent: list[float] = []
    probe.wait_for(lambda: sent.extend(good_frames(5)) or
                   {round(seconds_from_stamp(m.header.stamp), 6) for m in drive} & set(sent), 30,
                   lambda: f"the policy answering good frames after the empty ones (policy diagnostics "
                           f"{values_of(diags, ': policy')}, log {nodes.log('policy')[-500:]})")
    probe.wait_for(lambda: predictions, 20, "the world model predicting after the empty ones")
    probe.wait_for(lambda: values_of(diags, ": policy").get("dropped_malformed_image") == "3", 10,
                   "3 malformed frames counted by the policy node")
    probe.wait_for(lambda: any(v.get("dropped_malformed_image") == "3" for v in
                               [values_of(diags, s) for s in ("world model", "world_model")]), 10,
                   "3 malformed frames counted by the world-model node")
    assert policy.poll() is None and world.poll() is None


def test_integer_for_a_float_parameter_and_a_float_for_an_int(nodes, probe):
    camera = probe.subscribe(Image, "/camera/image_raw", qos_profile_sensor_data)
    sim = nodes.start("sim", "simulator", rate_hz=20)  # was InvalidParameterTypeException
    probe.wait_for(lambda: len(camera) >= 5, 60, "frames from a simulator given rate_hz=20")
    assert sim.poll() is None
    bad = nodes.start("sim", "simulator", max_steps=10.5)
    assert bad.wait(timeout=60) == 2  # a configuration error naming the parameter, not a traceback
    log = nodes.log("simulator")
    assert "parameter 'max_steps' must be int" in log and "Traceback" not in log


def test_the_simulator_never_acts_on_a_command_older_than_the_one_in_force(nodes, probe):
    nodes.start("sim", "simulator", remap={"drive": "/test_drive"})
    odom = probe.subscribe(Odometry, "/odom", QoSProfile(depth=100))
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    pub = probe.publisher(AckermannDriveStamped, "/test_drive")
    probe.wait_for(lambda: pub.get_subscription_count() > 0 and odom, 60, "simulator up")

    def command(stamp_s: float, speed: float) -> AckermannDriveStamped:
        msg = AckermannDriveStamped()
        msg.header.stamp = stamp_from_seconds(stamp_s)
        msg.drive.speed = speed
        return msg
    end, k = time.monotonic() + 3.0, 0
    while time.monotonic() < end:  # the driver says drive; every third command a late one stamped 1 s earlier says stop
        now = seconds_from_stamp(odom[-1].header.stamp)
        pub.publish(command(now, 15.0))
        probe.spin(0.02)
        k += 1
        if k % 3 == 0:
            pub.publish(command(now - 1.0, 0.0))
            probe.spin(0.02)
    assert odom[-1].twist.twist.linear.x > 5.0, nodes.log("simulator")[-2000:]  # the late stop never took over
    probe.wait_for(lambda: int(values_of(diags, ": vehicle").get("commands_older_than_in_force", 0)) > 10, 5,
                   "older commands dropped and counted")
    ages = values_of(diags, ": vehicle")
    assert float(ages["command_age_ms_max"]) >= 0.0 and "command_age_ms_p50" in ages


# --- signals to the processes that run nodes (finding 3) -------------------------------------------

def descendants(pid: int) -> set[int]:
    """Every process below pid (children first found through /proc's ppid fields)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: set[int], timeout: float) -> None:
    wait_until(lambda: not any(map(alive, pids)), timeout, lambda: f"nodes {[p for p in pids if alive(p)]} to exit")


def start_photon(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([*PHOTON, *args], stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def nodes_of(proc: subprocess.Popen, n: int, timeout: float = 60) -> set[int]:
    wait_until(lambda: proc.poll() is not None or len(descendants(proc.pid)) >= n, timeout,
               f"photon to start {n} processes")
    assert proc.poll() is None, f"photon exited before it started {n} processes"
    return descendants(proc.pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_photon_up_leaves_no_node_behind_and_the_car_stops(sig, tiny, probe, tmp_path):
    drive = probe.subscribe(AckermannDriveStamped, "/drive")
    proc = start_photon(["up", "sim-policy", "--set", f"policy.checkpoint={tiny['policy']}"], tmp_path / "up.log")
    try:
        children = nodes_of(proc, 2)
        probe.wait_for(lambda: len(drive) > 20, 90, "the policy driving")
        proc.send_signal(sig)
        proc.wait(timeout=30)
        wait_gone(children, 20)
        probe.spin(0.5)
        assert drive[-1].drive.speed == 0.0  # the policy's last word: a stop (SIGINT or, on SIGKILL, SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_node_publishes_its_stop_on_sigterm_as_on_sigint(tiny, nodes, probe):
    proc = nodes.start("sim-policy", "policy", checkpoint=str(tiny["policy"]), use_sim_time=False)
    camera = probe.publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
    drive = probe.subscribe(AckermannDriveStamped, "/drive")
    probe.wait_for(lambda: camera.get_subscription_count() > 0, 60, "policy up")
    t = 100.0
    while not drive:
        camera.publish(image_message(np.zeros((SIZE, SIZE, 3), np.uint8), stamp_from_seconds(t), "c"))
        t += 0.02
        probe.spin(0.02)
    drive.clear()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    probe.wait_for(lambda: drive, 5, "the SIGTERM stop")
    assert drive[-1].drive.speed == 0.0 and drive[-1].drive.steering_angle == 0.0


@pytest.mark.slow
def test_collect_on_sigterm_leaves_no_node_and_a_readable_bag(tmp_path):
    out = tmp_path / "bags"
    proc = start_photon(["collect", "--episodes", "1", "--out", str(out), "--quiet"], tmp_path / "collect.log")
    try:
        children = nodes_of(proc, 3)
        recording = lambda: max((p.stat().st_size for p in out.rglob("*.mcap")), default=0) >= 200_000  # noqa: E731
        wait_until(lambda: proc.poll() is not None or recording(), 90, "200 kB of the episode's bag", poll_s=0.5)
        assert proc.poll() is None, (tmp_path / "collect.log").read_text()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        wait_gone(children, 20)
        [bag] = list_bags(out)
        assert (bag / "metadata.yaml").is_file(), (tmp_path / "collect.log").read_text()
        assert len(read_episodes(bag)[0].arrays) > 0
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_eval_on_sigkill_leaves_no_node(probe, tmp_path):
    proc = start_photon(["eval", "--driver", "expert", "--seeds", "0", "--quiet"], tmp_path / "eval.log")
    try:
        children = nodes_of(proc, 2)
        # The nodes are up (in the graph); the parent dies without a word.
        probe.wait_for(lambda: {"simulator", "expert"} <= set(probe.node.get_node_names()), 60, "the eval's nodes")
        proc.kill()
        proc.wait(timeout=10)
        wait_gone(children, 20)
    finally:
        for pid in descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)
