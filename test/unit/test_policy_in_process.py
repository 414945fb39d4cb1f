"""The shipped policy driving in process (the node's per-frame code, the simulator's session):
an episode's score depends on its seed alone, not on the episode driven before it."""
import pytest

from photon_policy.policy.in_process import drive

pytestmark = pytest.mark.slow

STEPS = 150


def test_a_seed_scores_the_same_alone_and_after_another_seed():
    after = drive([100, 101], max_steps=STEPS).episodes
    alone = drive([101], max_steps=STEPS).episodes
    assert [e.seed for e in after] == [100, 101] and alone[0].seed == 101
    assert after[1].steps == alone[0].steps == STEPS
    assert after[1].score == alone[0].score, (after[1].score, alone[0].score)
