"""The reward model end to end on a tiny shadow fleet written here: real CarRacing frames from the
in-process expert, shadow bags on disk (the driver's /teleop with pulses, the policy's /policy/drive,
/shadow/divergence, /sim/episode), the shipped world model's features, real checkpoints; and the
bad input the issue names: missing and damaged clips, a checkpoint for another world model."""
from __future__ import annotations

import json

import numpy as np
import pytest
from ackermann_msgs.msg import AckermannDriveStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Image, Imu

from photon_msgs.msg import Divergence, EpisodeStatus
from photon_policy.cli import main as photon
from photon_policy.sim.carracing import CarRacingVehicle
from photon_policy.learning.checkpoint import CheckpointError
from photon_policy.reward.data import ShadowDataError, read_clip_dir, read_stream
from photon_policy.reward.evaluate import spearman
from photon_policy.reward.model import load_reward_checkpoint
from test_bag_reader import TYPES, drive, stamp, write_bag  # noqa: F401

FRAMES = 70                 # per drive: 1.4 s at 50 Hz
SEEDS = (1, 2, 3, 4)        # 4 is held out
FRAME_NS = 20_000_000
TYPES.update({Divergence: "photon_msgs/msg/Divergence"})


def records(frames, commands, seed, pulse_frames):
    """One shadow drive: the driver (pulses from frame 30 for `pulse_frames`) drives, the policy (the expert's
    own command) is in shadow; events where they differ by more than 0.1 rad; the score grows with
    the speed and stops growing while the driver pulses (a judge for the test, not CarRacing's)."""
    out, score = [], 0.0
    for k, (frame, (steering, speed)) in enumerate(zip(frames, commands)):
        t = 1_000_000_000 + k * FRAME_NS
        pulse = 30 <= k < 30 + pulse_frames
        driver = 0.4 if pulse else float(steering)
        score += 0.0 if pulse else 0.02 * float(speed)
        img = Image(height=96, width=96, encoding="rgb8", step=96 * 3, data=frame.tobytes())
        img.header.stamp = stamp(t)
        odom, imu = Odometry(), Imu()
        odom.header.stamp = imu.header.stamp = stamp(t)
        odom.twist.twist.linear.x = float(speed)
        div = Divergence(score=abs(driver - float(steering)) / 0.1, is_event=bool(pulse))
        div.header.stamp = stamp(t)
        status = EpisodeStatus(seed=seed, episode=0, step=k, score=score)
        status.header.stamp = stamp(t)
        out += [("/camera/image_raw", t + 1, img), ("/teleop", t + 2, drive(t, driver, float(speed))),
                ("/policy/drive", t + 3, drive(t, float(steering), float(speed))), ("/odom", t + 4, odom),
                ("/imu", t + 4, imu), ("/shadow/divergence", t + 5, div), ("/sim/episode", t + 6, status)]
    return out


def sim_frames(n):
    """n CarRacing frames of seed 0 under half throttle and a gentle weave, with the command that
    stands for each: [steering rad, speed m/s] (no expert: it would drive a whole episode)."""
    vehicle = CarRacingVehicle()
    try:
        frames, commands, frame = [], [], vehicle.reset(0)
        for k in range(n):
            steer = 0.3 * np.sin(k / 15)
            frames.append(frame)
            commands.append((0.4 * steer, vehicle.state().speed))
            frame = vehicle.step(np.array([steer, 0.5, 0.0], np.float32)).frame
        return np.stack(frames), np.asarray(commands, np.float32)
    finally:
        vehicle.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    frames, commands = sim_frames(FRAMES * len(SEEDS))
    index, fleet_lines = [], []
    for i, seed in enumerate(SEEDS):
        sl = slice(i * FRAMES, (i + 1) * FRAMES)
        recs = records(frames[sl], commands[sl], seed, pulse_frames=10 + 10 * i)
        name = f"shadow_pulses_s{seed}_n0.02"
        write_bag(root / "drives" / name, recs)
        fleet_lines.append({"seed": seed, "driver": "pulses", "bag": f"drives/{name}"})
        for ev, (a, b) in enumerate(((0, 55), (25, FRAMES)), 1):  # two overlapping clips per drive
            clip = f"s{seed}_pulses_ev{ev:04d}"
            lo, hi = 1_000_000_000 + a * FRAME_NS, 1_000_000_000 + b * FRAME_NS
            write_bag(root / "clips" / clip, [r for r in recs if lo <= r[1] < hi])
            index.append({"clip": clip, "seed": seed, "context": "pulses", "truncated": False, "error": ""})
    (root / "clips" / "index.jsonl").write_text("".join(json.dumps(line) + "\n" for line in index))
    (root / "fleet.jsonl").write_text("".join(json.dumps(line) + "\n" for line in fleet_lines))
    return root


def test_stream_reads_both_commands_events_and_the_judge(fleet):
    s = read_stream(fleet / "drives" / "shadow_pulses_s1_n0.02")
    assert len(s.arrays) == FRAMES and s.seed == 1
    assert np.flatnonzero(s.event).tolist() == list(range(30, 40))
    assert np.allclose(s.arrays.teleop[30:40, 0], 0.4) and not np.allclose(s.policy[30:40, 0], 0.4)
    assert np.all(np.diff(s.judge) >= 0) and s.judge[-1] > 0


@pytest.mark.parametrize("design", ["rlif", "pvp", "preference"])
def test_train_and_evaluate_each_design(fleet, tmp_path, design, capsys):
    run = tmp_path / design
    gate = ["--speed-gate"] if design == "rlif" else []
    args = ["train", "reward", *gate, "--clips", str(fleet / "clips"), "--drives", str(fleet / "drives"), "--out",
            str(run), "--design", design, "--holdout-seeds", "4", "--steps", "6", "--batch-size", "8",
            "--feature-cache", str(fleet / "cache")]
    assert photon(args) == 0
    # best.pt when the held-out streams gave a validation set; else last.pt (too few segments to pair)
    path = capsys.readouterr().out.split("reward checkpoint: ")[1].strip()
    ckpt = load_reward_checkpoint(path)
    assert ckpt["model_config"]["design"] == design and ckpt["model_config"]["speed_gate"] == bool(gate)
    assert len(ckpt["extra"]["world_model_sha256"]) == 64
    assert not any("_s4_" in name for name in ckpt["extra"]["train_streams"] + ckpt["extra"]["val_streams"])
    assert photon(["eval", "reward", "--ckpt", path, "--data", str(fleet / "drives"), "--clips",
                   str(fleet / "clips"), "--seeds", "3-4", "--feature-cache", str(fleet / "cache"),
                   "--skip-s", "0", "--json", str(run / "eval.json"), "--quiet"]) == 0
    report = json.loads((run / "eval.json").read_text())
    assert report["model"]["episodes"] == 2 and report["model"]["clips"] == 4
    assert report["model"]["segments"] == 2 and np.isfinite(report["model"]["clip_accuracy"])
    assert (run / "eval.png").stat().st_size > 0 and "episode rho" in capsys.readouterr().out
    assert report["design"] == design + (" x speed" if gate else "") and report["seeds"] == [3, 4]


def test_a_reward_checkpoint_for_another_world_model_is_refused(fleet, tmp_path):
    run = tmp_path / "r"
    assert photon(["train", "reward", "--clips", str(fleet / "clips"), "--out", str(run), "--steps", "2",
                   "--batch-size", "8", "--feature-cache", str(fleet / "cache")]) == 0
    trained_on = load_reward_checkpoint(run / "best.pt")["extra"]["world_model_sha256"]
    with pytest.raises(CheckpointError) as err:
        load_reward_checkpoint(run / "best.pt", world_model_sha256="ab" * 32)
    assert trained_on in str(err.value) and "ab" * 32 in str(err.value) and "best.pt" in str(err.value)


def test_spearman_ties_and_order():
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.array([1, 1, 2, 3]), np.array([5, 5, 6, 7])) == pytest.approx(1.0)  # ties share a rank
    assert np.isnan(spearman(np.array([1, 2, 3]), np.array([1, 1, 1])))


def copy_clips(fleet, tmp_path):
    import shutil
    shutil.copytree(fleet / "clips", tmp_path / "clips")
    return tmp_path / "clips"


def test_an_index_naming_an_absent_bag_names_it(fleet, tmp_path):
    clips = copy_clips(fleet, tmp_path)
    import shutil
    shutil.rmtree(clips / "s2_pulses_ev0001")
    with pytest.raises(ShadowDataError, match="s2_pulses_ev0001.*no such bag"):
        read_clip_dir(clips)
    assert photon(["train", "reward", "--clips", str(clips), "--out", str(tmp_path / "r"), "--steps", "2"]) == 1


def test_a_truncated_clip_names_the_file(fleet, tmp_path):
    clips = copy_clips(fleet, tmp_path)
    [mcap] = (clips / "s3_pulses_ev0002").glob("*.mcap")
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    lines, bags = read_clip_dir(clips)
    with pytest.raises(ShadowDataError, match="s3_pulses_ev0002"):
        read_stream(bags["s3_pulses_ev0002"])
    index = clips / "index.jsonl"
    index.write_text(index.read_text().replace('"truncated": false', '"truncated": true', 1))
    with pytest.raises(ShadowDataError, match="s1_pulses_ev0001: truncated clip"):
        read_clip_dir(clips)
