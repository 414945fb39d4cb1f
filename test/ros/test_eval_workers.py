"""`photon eval --workers N`: simulator/driver pairs side by side, each in its own DDS domain (the
test domain + i). The expert drives: its episodes depend on their seed alone, so a split run must
score as one pair does (a policy carries context across episodes; docs/EVAL_SPEED.md)."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from photon_policy.cli import main as photon
from conftest import wait_until
from test_faults import alive, descendants, nodes_of, start_photon, wait_gone

SEEDS = "0,1"
STEPS = 40

pytestmark = pytest.mark.slow  # simulated episodes through the ROS loop


def test_two_workers_score_seed_for_seed_as_one(tmp_path, capsys):
    reports = {}
    for workers in (1, 2):
        out = tmp_path / f"workers-{workers}.json"
        code = photon(["eval", "--driver", "expert", "--seeds", SEEDS, "--max-steps", str(STEPS), "--quiet",
                       "--workers", str(workers), "--json", str(out), "--log-dir", str(tmp_path / f"logs-{workers}")])
        assert code == 0, capsys.readouterr()
        reports[workers] = json.loads(out.read_text())
    one, two = reports[1], reports[2]
    assert [(e["seed"], e["score"], e["steps"]) for e in two["episodes"]] == \
        [(e["seed"], e["score"], e["steps"]) for e in one["episodes"]], (one["episodes"], two["episodes"])
    assert [e["seed"] for e in two["episodes"]] == [0, 1] and all(e["steps"] == STEPS for e in two["episodes"])
    assert one["workers"] == 1 and two["workers"] == 2
    base = int(os.environ["ROS_DOMAIN_ID"])
    assert [(w["domain_id"], w["seeds"], w["steps"]) for w in two["worker_runs"]] == [(base, [0], STEPS),
                                                                                    (base + 1, [1], STEPS)]
    assert all(w["wall_time_s"] > 0 for w in two["worker_runs"])
    assert sorted(p.name for p in (tmp_path / "logs-2").iterdir()) == ["worker-0", "worker-1"]
    assert "2 workers side by side" in capsys.readouterr().out


def graph_names(domain_id: int):
    """A function listing the node names seen in `domain_id` (a context of its own)."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
    node = Node(f"workers_probe_{domain_id}", context=context)

    def names() -> set[str]:
        return set(node.get_node_names())
    names.close = lambda: (node.destroy_node(), rclpy.try_shutdown(context=context))  # type: ignore[attr-defined]
    return names


def test_sigterm_to_a_two_worker_eval_stops_every_node(tmp_path):
    base = int(os.environ["ROS_DOMAIN_ID"])
    graphs = [graph_names(base), graph_names(base + 1)]
    proc = start_photon(["eval", "--driver", "expert", "--seeds", SEEDS, "--workers", "2", "--quiet"],
                        tmp_path / "eval.log")
    try:
        nodes_of(proc, 4)
        # Both pairs are up, each in its own domain; then the supervisor's SIGTERM.
        wait_until(lambda: proc.poll() is not None or all({"simulator", "expert"} <= g() for g in graphs), 90,
                   lambda: f"both workers' nodes (graphs: {[sorted(g()) for g in graphs]}, exit {proc.poll()})")
        assert proc.poll() is None, (tmp_path / "eval.log").read_text()
        children = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130, (tmp_path / "eval.log").read_text()
        wait_gone(children, 20)
    finally:
        for g in graphs:
            g.close()
        if proc.poll() is None:
            proc.kill()
        for pid in descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_failed_worker_fails_the_eval_with_its_log(tmp_path, capsys):
    code = photon(["eval", "--driver", "expert", "--seeds", SEEDS, "--workers", "2", "--quiet",
                   "--set", "expert.track_width=-1", "--log-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "worker" in err and "ROS_DOMAIN_ID" in err and "node 'expert' exited with code" in err, err
    assert "track_width=-1" in err, err  # the node's own words, from its log's tail
    def left() -> dict[int, bytes]:
        found = {}
        for pid in descendants(os.getpid()):
            try:
                found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()[:200]
            except OSError:  # gone meanwhile
                continue
        return {pid: cmd for pid, cmd in found.items() if alive(pid)}
    # A node not stopped would live on (until this process ends); one stopping is gone in moments.
    wait_until(lambda: not left(), 10, lambda: f"the failed eval's processes to be gone: {left()}")
