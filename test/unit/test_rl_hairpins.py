"""rl/hairpins.py: which tracks have a hairpin beside another stretch of road, from the centre line."""
import numpy as np
import pytest

from photon_policy.rl.hairpins import HairpinFilter, SBendFilter, main
from photon_policy.sim.carracing import CarRacingVehicle


def _circle(n=300, radius=150.0):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([radius * np.cos(a), radius * np.sin(a)], 1)


def _stadium_with_hairpin():
    """A long oval whose right end is a tight U-turn: the two straights run 20 m apart."""
    straight = np.linspace(-150, 150, 90)
    turn = np.linspace(-np.pi / 2, np.pi / 2, 9)
    right = np.stack([150 + 10 * np.cos(turn), 10 * np.sin(turn)], 1)
    left = np.stack([-150 - 10 * np.cos(turn), -10 * np.sin(turn)], 1)
    return np.concatenate([np.stack([straight, np.full(90, -10.0)], 1), right[1:-1],
                           np.stack([straight[::-1], np.full(90, 10.0)], 1), left[1:-1]])


def test_a_circle_has_no_hairpin_and_a_tight_u_turn_beside_its_own_road_has_one():
    keep = HairpinFilter()
    turn, gap = keep.shape(_circle())
    assert turn == pytest.approx(16 * 2 * np.pi / 300)  # 16 tiles of a 300-tile circle
    assert gap == pytest.approx(2 * 150.0 * np.sin(25 * np.pi / 300))  # the chord 25 tiles apart
    assert not keep.keeps(_circle())
    turn, gap = keep.shape(_stadium_with_hairpin())
    assert turn > 3.0 and gap == pytest.approx(20.0)
    assert keep.keeps(_stadium_with_hairpin())
    assert not HairpinFilter(max_gap=15.0).keeps(_stadium_with_hairpin())


def _real(measure, seeds):
    """{seed: measure(centre line)} for real tracks from the simulator."""
    vehicle = CarRacingVehicle()
    try:
        shapes = {}
        for seed in seeds:
            vehicle.reset(seed)
            shapes[seed] = measure(vehicle.track_centerline())
        return shapes
    finally:
        vehicle.close()


def test_real_tracks_from_the_simulator_and_the_command_line(capsys):
    shapes = _real(HairpinFilter().keeps, (103, 428))
    assert shapes == {103: False, 428: True}  # 428: the track whose U-turn RL arms E and G crossed the grass at
    assert main(["--seeds", "428,103"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "428"


def test_a_track_too_short_to_have_two_stretches_is_refused():
    with pytest.raises(ValueError, match="too short"):
        HairpinFilter().shape(_circle(n=40))


def _stadium_with_s_bends(turn=2.6, tiles=10, step=3.5):
    """A stadium whose two straights each have an S-bend: `tiles` tiles turning `turn` rad left, then
    `tiles` turning back right. The two bends shift their straights opposite ways, so the loop closes."""
    straight = np.concatenate([np.zeros(40), np.full(tiles, turn / tiles), np.full(tiles, -turn / tiles), np.zeros(40)])
    u_turn = np.full(9, np.pi / 9)
    heading = np.cumsum(np.concatenate([straight, u_turn, straight, u_turn]))
    return np.cumsum(step * np.stack([np.cos(heading), np.sin(heading)], 1), axis=0)


def test_an_s_bend_is_two_opposite_turns_back_to_back_and_a_circle_has_none():
    keep = SBendFilter()
    assert keep.shape(_circle()) == 0.0  # every turn the same way
    assert keep.shape(_stadium_with_s_bends()) == pytest.approx(2.6, abs=0.02)
    assert keep.keeps(_stadium_with_s_bends()) and not keep.keeps(_stadium_with_s_bends(turn=2.0))
    assert not SBendFilter(window=4).keeps(_stadium_with_s_bends())  # each turn spread over 10 tiles: 4 see part of one
    with pytest.raises(ValueError, match="too short"):
        keep.shape(_circle(n=20))


def test_real_s_bends_and_the_command_line(capsys):
    shapes = _real(SBendFilter().shape, (103, 118))
    assert shapes[118] > 2.4 > shapes[103]  # 118: the held-out lap RL arms to session 14 cut across
    assert main(["--shape", "s-bend", "--seeds", "103,118"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "118"
