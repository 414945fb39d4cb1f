"""`photon replay-test` in `make test`: the bundled reference bags fed to the real policy, world-model
and shadow nodes in lockstep match their pinned outputs; and it fails clearly: a value off by more
than its tolerance is named (topic, index, field, both values), a reference made with another
checkpoint is refused with both hashes before any node starts, a node that dies mid-replay is
reported with the end of its log, within the deadline."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from photon_policy.cli import main as photon
from photon_policy.lockstep import RunError
from photon_policy.replay.compare import compare, diff_report
from photon_policy.replay.refs import read_reference, ref_path
from photon_policy.replay.runner import run_replay
from photon_policy.replay.suites import DEFAULT_REFS


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """One replay of every suite, as `photon replay-test` runs it (the same function)."""
    return run_replay(DEFAULT_REFS, log_dir=tmp_path_factory.mktemp("replay"))


def test_the_reference_bags_replay_as_pinned(replay):
    print(replay.text())  # counts and per-frame time p50/p99 against each node's budget (reported)
    assert replay.ok, replay.text()
    runs = {r.suite.name: r.run for r in replay.results}
    assert set(runs) == {"expert_drive", "shadow_drive"}
    drive = runs["expert_drive"].nodes["policy"].outputs["/drive"]["messages"]
    assert len(drive) == runs["expert_drive"].frames  # one command per frame, nothing else
    assert len(runs["expert_drive"].nodes["world_model"].outputs["/world_model/state"]["messages"]) >= 4
    assert len(runs["shadow_drive"].nodes["shadow"].outputs["/shadow/divergence"]["messages"]) == 151
    assert any("not read by the replayed nodes" in s for s in runs["expert_drive"].skipped)


def test_a_value_off_by_more_than_its_tolerance_fails_naming_topic_index_field_and_values(replay):
    reference = read_reference(ref_path(DEFAULT_REFS, "expert_drive"))
    messages = reference.outputs["policy"]["/drive"]["messages"]
    pinned = messages[17]["drive.steering_angle"]
    messages[17]["drive.steering_angle"] = pinned + 2e-4  # twice the 1e-4 rad tolerance
    got = replay.results[0].run.nodes["policy"].outputs
    [diff] = compare(reference.outputs["policy"], got)
    assert (diff.topic, diff.index, diff.field) == ("/drive", 17, "drive.steering_angle")
    assert diff.expected == pinned + 2e-4 and diff.got == pytest.approx(pinned, abs=1e-4)
    text = diff_report([diff], "suite 'expert_drive'")
    assert f"/drive[17] (stamp {messages[17]['header.stamp.sec']}." in text and "drive.steering_angle" in text
    assert "> tolerance 0.0001" in text


def copied_refs(tmp_path):
    """test/replay with its references copied (the bags linked) so that one can be edited."""
    refs = tmp_path / "replay"
    (refs / "refs").mkdir(parents=True)
    (refs / "suites.yaml").write_text((DEFAULT_REFS / "suites.yaml").read_text())
    (refs / "bags").symlink_to(DEFAULT_REFS / "bags")
    for path in (DEFAULT_REFS / "refs").glob("*.json"):
        (refs / "refs" / path.name).write_text(path.read_text())
    return refs


def test_a_reference_made_with_another_checkpoint_is_refused_with_both_hashes(tmp_path, capsys):
    refs = copied_refs(tmp_path)
    path = ref_path(refs, "expert_drive")
    data = json.loads(path.read_text())
    ours = data["checkpoints"]["policy"]
    data["checkpoints"]["policy"] = "0" * 64
    path.write_text(json.dumps(data))
    started = time.monotonic()
    assert photon(["replay-test", "--refs", str(refs), "--nodes", "policy", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "policy checkpoint" in err and "0" * 64 in err and ours in err
    assert time.monotonic() - started < 30  # refused before any node starts


def test_a_node_that_dies_mid_replay_is_reported_with_its_log(tmp_path):
    def kill_at_frame_20(k: int, total: int, processes) -> None:
        if k == 20:
            [node] = processes.nodes
            os.kill(node.process.pid, signal.SIGKILL)

    started = time.monotonic()
    with pytest.raises(RunError) as failure:
        run_replay(DEFAULT_REFS, nodes=["shadow"], log_dir=tmp_path, answer_timeout_s=20.0,
                   on_frame=kill_at_frame_20)
    text = str(failure.value)
    assert "node 'shadow' exited with code -9" in text
    assert "comparing /policy/drive with /teleop" in text  # the end of its log
    assert time.monotonic() - started < 60
