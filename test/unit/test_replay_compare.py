"""The replay regression's pure core: comparison within per-field tolerances, the diff a reviewer
reads, the reference file and its refusals, which frames the world model answers, and what a
damaged bag or one with unknown message types still feeds."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosbags.typesys import get_types_from_msg

from photon_policy.bags.recorder import BagWriter
from photon_policy.bags.typestore import photon_typestore
from photon_policy.replay.compare import compare, diff_report
from photon_policy.replay.fields import RULES, flatten, tolerance_for
from photon_policy.replay.plan import load_plan
from photon_policy.replay.refs import Reference, ReferenceError, check_reference, read_reference, write_reference
from photon_policy.replay.suites import DEFAULT_REFS, ReplayNode, Suite, load_suites, prediction_frames
from photon_policy.ros.images import image_message
from photon_policy.ros.stamps import stamp_from_seconds

DRIVE = "ackermann_msgs/msg/AckermannDriveStamped"
STATE = "photon_msgs/msg/WorldModelState"


def drive(k: int, steering: float) -> dict:
    return {"header.stamp.sec": 1, "header.stamp.nanosec": k * 20_000_000, "header.frame_id": "base_link",
            "drive.steering_angle": steering, "drive.speed": 10.0}


def outputs(*steerings: float) -> dict:
    return {"/drive": {"type": DRIVE, "messages": [drive(k, s) for k, s in enumerate(steerings)]}}


def test_equal_outputs_and_differences_within_tolerance_pass():
    assert compare(outputs(0.1, 0.2), outputs(0.1, 0.2)) == []
    assert compare(outputs(0.1, 0.2), outputs(0.1, 0.2 + 0.9e-4)) == []  # steering: 1e-4 rad


def test_a_value_off_by_more_than_its_tolerance_names_topic_index_field_and_both_values():
    [d] = compare(outputs(0.1, 0.2, 0.3), outputs(0.1, 0.2, 0.3002))
    assert (d.topic, d.index, d.field, d.expected, d.got) == ("/drive", 2, "drive.steering_angle", 0.3, 0.3002)
    text = diff_report([d], "suite 'x'")
    assert "/drive[2] (stamp 1.040000000) drive.steering_angle: expected 0.3, got 0.3002" in text
    assert "> tolerance 0.0001" in text


def test_counts_order_absent_topics_and_exact_fields():
    shorter = compare(outputs(0.1, 0.2, 0.3), outputs(0.1, 0.2))
    assert [(d.field, d.expected, d.got) for d in shorter] == [("message count", 3, 2)]
    swapped = outputs(0.1, 0.2)
    swapped["/drive"]["messages"].reverse()  # order: the stamps are compared exactly, index by index
    assert {d.field for d in compare(outputs(0.1, 0.2), swapped)} >= {"header.stamp.nanosec"}
    assert compare(outputs(0.1), {})[0].got == "topic absent"
    renamed = outputs(0.1)
    renamed["/drive"]["messages"][0]["header.frame_id"] = "map"
    assert compare(outputs(0.1), renamed)[0].field == "header.frame_id"


def test_ignored_fields_and_vectors():
    want = {"/world_model/state": {"type": STATE, "messages": [
        {"latent": [0.0, 1.0, 2.0], "inference_time": 0.1, "latent_dim": 3}]}}
    got = {"/world_model/state": {"type": STATE, "messages": [
        {"latent": [0.0, 1.0005, 2.5], "inference_time": 9.0, "latent_dim": 3}]}}
    [d] = compare(want, got)  # inference_time is ignored; latent within 1e-3 except element 2
    assert d.field == "latent[2]" and tolerance_for(STATE, "inference_time") is None
    got["/world_model/state"]["messages"][0]["latent"] = [0.0]
    assert compare(want, got)[0].field == "len(latent)"


def test_diff_report_is_bounded_per_topic():
    text = diff_report(compare(outputs(*[0.0] * 30), outputs(*[1.0] * 30)), "suite 'x'")
    assert "30 difference(s)" in text and "... 10 more on /drive" in text


def test_every_rule_has_a_reason():
    assert all(rule.why for rules in RULES.values() for rule in rules)


def test_image_data_is_summarised_by_block_means():
    frame = np.zeros((96, 480, 3), np.uint8)
    frame[:, :60, 0] = 255
    flat = flatten(image_message(frame, stamp_from_seconds(1.5), "cam"), "sensor_msgs/msg/Image")
    assert "data" not in flat and len(flat["data.block_mean"]) == 8 * 8 * 3
    assert flat["data.block_mean"][:3] == [255.0, 0.0, 0.0] and flat["header.stamp.sec"] == 1
    assert flat["encoding"] == "rgb8" and flat["width"] == 480


def test_world_model_prediction_frames_follow_its_model_steps_context_and_rate():
    stamps = [0.02 * (k + 1) for k in range(120)]  # 50 Hz
    # steps at frames 0, 5, 10, ...: ready after 3, then every frame (rate 0) or once a second
    assert min(prediction_frames(stamps, 0.1, 3, 0.0)) == 10 and len(prediction_frames(stamps, 0.1, 3, 0.0)) == 110
    assert sorted(prediction_frames(stamps, 0.1, 3, 1.0)) == [10, 60, 110]
    assert sorted(prediction_frames(stamps, 0.1, 3, 10.0))[:3] == [10, 15, 20]


def ref(**checkpoints: str) -> Reference:
    return Reference("s", "bag123", checkpoints, {}, {"policy": {}}, {"date": "d", "commit": "c"})


def test_reference_round_trip_and_refusals_name_both_hashes(tmp_path):
    path = tmp_path / "refs" / "s.json"
    write_reference(path, ref(policy="aaa"))
    loaded = read_reference(path)
    suite = Suite("s", tmp_path, "/camera/image_raw", {}, (ReplayNode("shadow", "sim-shadow", ("/x",),
                                                                       "every_frame", 1.0),))
    with pytest.raises(ReferenceError, match="another bag: reference bag sha256 bag123.*has bag999"):
        check_reference(path, loaded, suite, "bag999", {})
    with pytest.raises(ReferenceError, match="no outputs of node 'shadow'"):
        check_reference(path, loaded, suite, "bag123", {})
    policy = Suite("s", tmp_path, "/camera/image_raw", {}, (ReplayNode("policy", "sim-policy", ("/drive",),
                                                                        "every_frame", 1.0),))
    with pytest.raises(ReferenceError, match="reference content hash aaa, .* has bbb"):
        check_reference(path, loaded, policy, "bag123", {"policy": "bbb"})
    check_reference(path, loaded, policy, "bag123", {"policy": "aaa"})
    path.write_text("{}")
    with pytest.raises(ReferenceError, match="not a replay reference"):
        read_reference(path)
    with pytest.raises(ReferenceError, match="update-refs"):
        read_reference(tmp_path / "none.json")


def test_the_bundled_references_are_small_and_pinned_to_their_bags():
    total = sum(p.stat().st_size for p in DEFAULT_REFS.rglob("*") if p.is_file())
    assert total < 3 * 2**20, f"test/replay holds {total} bytes"
    for suite in load_suites(DEFAULT_REFS):
        reference = read_reference(DEFAULT_REFS / "refs" / f"{suite.name}.json")
        assert set(reference.outputs) == {n.name for n in suite.nodes}


def shadow_suite(bag) -> Suite:
    [suite] = [s for s in load_suites(DEFAULT_REFS) if s.name == "shadow_drive"]
    return Suite(suite.name, bag, suite.frames, suite.feed, suite.nodes)


def test_a_truncated_bag_feeds_what_is_readable_and_says_what_was_lost(tmp_path):
    suite = shadow_suite(DEFAULT_REFS / "bags" / "dagger_s0011_n0")
    whole = load_plan(suite)
    bag = tmp_path / "cut"
    shutil.copytree(suite.bag, bag)
    [mcap] = bag.glob("*.mcap")
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    cut = load_plan(shadow_suite(bag))
    assert 0 < len(cut.steps) < len(whole.steps)
    assert [s.stamp_ns for s in cut.steps] == [s.stamp_ns for s in whole.steps[: len(cut.steps)]]
    assert any("not readable: /camera/image_raw" in w for w in cut.warnings), cut.warnings


def test_unknown_message_types_are_skipped_and_listed(tmp_path):
    store = photon_typestore()
    store.register(get_types_from_msg("std_msgs/Header header\nuint8[] payload", "foreign_msgs/msg/Blob"))
    bag = tmp_path / "foreign"
    with BagWriter(bag, typestore=store) as writer:
        writer.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        writer.add_topic("/teleop", "foreign_msgs/msg/Blob")
        for k in range(3):
            msg = image_message(np.zeros((8, 8, 3), np.uint8), stamp_from_seconds(1 + k * 0.02), "cam")
            writer.write("/camera/image_raw", k, serialize_message(msg))
            blob = store.serialize_cdr(store.types["foreign_msgs/msg/Blob"](
                header=store.types["std_msgs/msg/Header"](stamp=store.types["builtin_interfaces/msg/Time"](
                    sec=1, nanosec=0), frame_id=""), payload=np.zeros(2, np.uint8)), "foreign_msgs/msg/Blob")
            writer.write("/teleop", k, blob)
    plan = load_plan(shadow_suite(bag))
    assert len(plan.steps) == 3 and all(not s.before for s in plan.steps)
    assert any("/teleop: unknown message type foreign_msgs/msg/Blob (3 messages)" in s for s in plan.skipped)
    assert any("/drive: not in the bag" in s for s in plan.skipped)
