"""`photon eval --workers`: how seeds are dealt and which DDS domains the pairs take (no DDS here)."""
from __future__ import annotations

import pytest

from photon_policy.cli import build_parser
from photon_policy.evaluation import auto_workers, split_seeds, worker_domains


def test_seeds_are_dealt_round_robin_and_never_to_more_workers_than_seeds():
    assert split_seeds([100, 101, 102, 103, 104], 2) == [[0, 2, 4], [1, 3]]
    assert split_seeds([7, 7, 3], 8) == [[0], [1], [2]]  # positions: a repeated seed is driven twice
    assert split_seeds([5], 1) == [[0]]
    with pytest.raises(ValueError, match="at least 1"):
        split_seeds([1, 2], 0)


def test_worker_domains_follow_the_callers_and_stay_at_most_101(monkeypatch):
    assert worker_domains(3, base=40) == [40, 41, 42]
    assert worker_domains(2, base=100) == [100, 101]
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID 100 to 102.*at most 99"):
        worker_domains(3, base=100)
    monkeypatch.setenv("ROS_DOMAIN_ID", "57")
    assert worker_domains(2) == [57, 58]
    monkeypatch.delenv("ROS_DOMAIN_ID")
    assert worker_domains(2) == [0, 1]
    monkeypatch.setenv("ROS_DOMAIN_ID", "x1")
    with pytest.raises(ValueError, match="not a domain id"):
        worker_domains(2)


def test_auto_is_one_pair_per_core_within_the_seeds():
    assert auto_workers(100, cpus=2) == 2 and auto_workers(100, cpus=16) == 16
    assert auto_workers(3, cpus=16) == 3 and auto_workers(100, cpus=1) == 1


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_zero_negative_or_non_numeric_workers_are_argparse_errors(bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["eval", "--workers", bad])
    assert exit_.value.code == 2 and "--workers" in capsys.readouterr().err
    assert build_parser().parse_args(["eval", "--workers", "auto"]).workers == "auto"
