"""Issue 14, findings 5-7 (ROS-free part): damaged and hostile data, bags cut by SIGKILL,
and command-line values that used to end in a traceback or a silent NaN run."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from photon_policy.bags.data_dirs import read_data_dirs
from photon_policy.bags.reader import BagError, list_bags, read_episode
from photon_policy.bags.reindex import readable, reindex
from photon_policy.cli import main as photon
from photon_policy.seeds import MAX_SEEDS, parse_seeds
from test_bag_reader import T0, drive, episode_records, frame_stamp, odom, stamp, write_bag  # noqa: F401
from sensor_msgs.msg import Image
from photon_policy.bags.recorder import BagWriter
from rclpy.serialization import serialize_message


def big_bag(path, n: int = 150, speed: float = 1.0):
    """96x96 frames in zstd chunks (as `photon record` writes them): several 1 MiB chunks."""
    with BagWriter(path) as bag:
        bag.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        bag.add_topic("/teleop", "ackermann_msgs/msg/AckermannDriveStamped")
        rng = np.random.default_rng(0)
        for k in range(n):
            t = frame_stamp(k)
            # Noise over 16 grey levels: zstd compresses it (random bytes it would store raw,
            # and damage there would only change pixels).
            msg = Image(height=96, width=96, encoding="rgb8", step=288,
                        data=(rng.integers(0, 16, 96 * 96 * 3, dtype=np.uint8) + k % 200).tobytes())
            msg.header.stamp = stamp(t)
            bag.write("/camera/image_raw", t + 1_000_000, serialize_message(msg))
            bag.write("/teleop", t + 2_000_000, serialize_message(drive(t, 0.0, speed)))
    return path


def test_a_corrupt_chunk_is_reported_not_a_zstd_traceback(tmp_path):
    bag = big_bag(tmp_path / "corrupt")
    [mcap] = bag.glob("*.mcap")
    data = bytearray(mcap.read_bytes())
    pos, chunks = 8, []  # MCAP records after the magic: opcode (1 byte), length (u64), body
    while pos + 9 <= len(data):
        op, length = data[pos], int.from_bytes(data[pos + 1:pos + 9], "little")
        if op == 0x06:
            chunks.append((pos + 9, length))
        pos += 9 + length
    # 4 KiB of random bytes over the start of the second chunk's zstd data (after its 28-byte
    # header, the compression name "zstd" and the data length): zstd itself refuses it.
    start, _ = chunks[1]
    middle = start + 28 + 4 + 4 + 8
    data[middle:middle + 4096] = np.random.default_rng(1).integers(0, 255, 4096, dtype=np.uint8).tobytes()
    mcap.write_bytes(bytes(data))
    try:
        result = read_episode(bag)
    except BagError as exc:  # nothing readable is an error naming the bag, never a ZstdError
        assert str(bag) in str(exc)
    else:
        assert 0 < len(result.arrays) < 150
        assert any("damaged chunk" in w or "reading stopped" in w for w in result.warnings), result.warnings


def test_one_bad_bag_among_good_ones_is_skipped_and_listed_or_fails_strictly(tmp_path):
    good = [big_bag(tmp_path / "data" / f"good{i}", n=20) for i in range(2)]
    bad = tmp_path / "data" / "bad"
    bad.mkdir()
    (bad / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9}\n")
    lines: list[str] = []
    read = read_data_dirs([tmp_path / "data"], log=lines.append)
    assert len(read.episodes) == 2 and [p for p, _ in read.skipped] == [bad]
    assert any(str(bad) in line and "skipped" in line for line in lines)
    with pytest.raises(BagError, match="strict-data.*bad"):
        read_data_dirs([tmp_path / "data"], strict=True, log=lines.append)
    assert good


def test_an_empty_data_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="no bags under"):
        read_data_dirs([tmp_path / "empty"])
    code = photon(["train", "world-model", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "photon: error:" in err and str(tmp_path / "empty") in err and "Traceback" not in err


def test_non_finite_commands_are_refused_at_reading(tmp_path):
    records = [r for r in episode_records() if r[0] != "/drive"]
    nan_bag = write_bag(tmp_path / "nan", records + [("/drive", frame_stamp(k) + 1, drive(frame_stamp(k), math.nan, 1.0))
                                                       for k in range(20)])
    with pytest.raises(BagError, match="all 20 messages on /drive hold non-finite"):
        read_episode(nan_bag)
    some = write_bag(tmp_path / "some", records + [("/drive", frame_stamp(k) + 1,
                                                    drive(frame_stamp(k), 0.1, math.inf if k % 2 else 2.0))
                                                   for k in range(20)])
    result = read_episode(some)
    assert np.all(np.isfinite(result.arrays.commands)) and np.all(np.isfinite(result.arrays.teleop))
    assert any("skipped 10 of 20 message(s) holding non-finite" in w for w in result.warnings)


def test_values_beyond_float32_are_refused_like_inf(tmp_path):
    """Found by the fuzz tier at 10,000 examples: a damaged odometry payload decoded to a finite
    float64 (~1e300) that became inf in the float32 arrays."""
    records = [r for r in episode_records() if r[0] != "/odom"]
    huge = odom(frame_stamp(3) - 1, 1)
    huge.twist.twist.linear.x = 1e300
    bag = write_bag(tmp_path / "huge", records + [("/odom", frame_stamp(k) + 2, odom(frame_stamp(k) - 1, k))
                                                  for k in range(20) if k != 3] + [("/odom", frame_stamp(3) + 2, huge)])
    result = read_episode(bag)
    assert np.all(np.isfinite(result.arrays.odom))
    assert any("/odom: skipped 1 of 20 message(s) holding non-finite values (NaN, inf, or beyond float32" in w
               for w in result.warnings)


def test_a_bag_cut_by_sigkill_is_reindexed_for_rosbags(tmp_path, capsys):
    bag = big_bag(tmp_path / "killed")
    [mcap] = bag.glob("*.mcap")
    (bag / "metadata.yaml").unlink()  # what a killed recorder leaves: no metadata, no MCAP footer
    mcap.write_bytes(mcap.read_bytes()[: int(mcap.stat().st_size * 0.7)])
    assert not readable(bag) and list_bags(tmp_path) == [bag]
    before = read_episode(bag)
    assert any(f"photon bag reindex {bag}" in w for w in before.warnings)

    assert photon(["bag", "reindex", str(bag)]) == 0
    assert "reindexed" in capsys.readouterr().out
    assert readable(bag) and (bag / "killed.mcap.orig").is_file()
    with Reader(bag) as reader:  # rosbags, not our reader
        images = [c for c in reader.connections if c.topic == "/camera/image_raw"]
        assert sum(1 for _ in reader.messages(connections=images)) == len(before.arrays)
        assert sum(1 for _ in reader.messages()) == reader.message_count
    after = read_episode(bag)
    np.testing.assert_array_equal(after.arrays.frames, before.arrays.frames)
    assert not any("reindex" in w for w in after.warnings)
    assert photon(["bag", "reindex", str(bag)]) == 0 and "nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize("spec", ["99999999999999999999999", "0-100000000", f"0-{MAX_SEEDS}", "4294967296"])
def test_huge_seed_specs_are_clear_errors_fast(spec, capsys):
    started = time.monotonic()
    with pytest.raises(ValueError, match="seed"):
        parse_seeds(spec)
    assert photon(["eval", "--seeds", spec]) == 2
    assert "photon: error:" in capsys.readouterr().err
    del started  # (was a MemoryError after 40 s; no timing assert here)


@pytest.mark.parametrize("noise", ["inf", "nan", "-inf"])
def test_collect_refuses_non_finite_noise(noise, tmp_path, capsys):
    assert photon(["collect", "--episodes", "1", f"--noise={noise}", "--out", str(tmp_path / "o")]) == 2
    assert "--noise" in capsys.readouterr().err and not (tmp_path / "o").exists()
