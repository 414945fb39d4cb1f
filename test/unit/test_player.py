"""The scheduling core of `photon play` on a virtual clock: rate, start offset, loop, pause, /clock, no drift."""
from __future__ import annotations

from pathlib import Path

import pytest

from photon_policy.bags.player import (NS, PlayableBag, PlayControl, PlayOptions, QosRecord, load_bag, parse_remap,
                                       play)
from photon_policy.bags.reader import BagError
from photon_policy.bags.recorder import BagWriter

ORIGIN = 1_700_000_000 * NS  # a car's wall-clock origin, not 0


class VirtualTime:
    """now() and wait() on a virtual clock; `at` runs actions when the clock passes a time."""

    def __init__(self) -> None:
        self.t = 100.0
        self.actions: list[tuple[float, object]] = []

    def now(self) -> float:
        return self.t

    def wait(self, seconds: float) -> None:
        assert seconds > 0, f"a zero wait would spin: {seconds}"
        self.t += seconds
        for when, action in [a for a in self.actions if a[0] <= self.t + 1e-9]:
            self.actions.remove((when, action))
            action()


class Recorder:
    """The sink: what was published when (virtual seconds since the start), and the /clock values."""

    def __init__(self, time: VirtualTime, publish_cost_s: dict[int, float] | None = None) -> None:
        self.time, self.start = time, time.t
        self.published: list[tuple[float, str, bytes]] = []
        self.clocks: list[tuple[float, int]] = []
        self.publish_cost_s = publish_cost_s or {}
        self.on_publish = None

    def publish(self, topic: str, data: bytes) -> None:
        self.published.append((self.time.t - self.start, topic, data))
        self.time.t += self.publish_cost_s.get(len(self.published), 0.0)  # a slow publish
        if self.on_publish:
            self.on_publish()

    def clock(self, bag_ns: int) -> None:
        self.clocks.append((self.time.t - self.start, bag_ns))


def bag_of(stamps_s: list[float]) -> PlayableBag:
    messages = [(ORIGIN + round(s * NS), "/a" if i % 2 else "/b", bytes([i])) for i, s in enumerate(stamps_s)]
    return PlayableBag(Path("synthetic"), {}, messages)


def run(bag: PlayableBag, options: PlayOptions, **sink_args) -> tuple[Recorder, object, VirtualTime, PlayControl]:
    time = VirtualTime()
    sink = Recorder(time, **sink_args)
    control = PlayControl(options.start_paused)
    return sink, (lambda: play(bag, options, sink, control, now=time.now, wait=time.wait)), time, control


STAMPS = [0.0, 0.02, 0.04, 0.5, 0.52, 1.0]


@pytest.mark.parametrize("rate", [1.0, 2.0, 0.5])
def test_messages_go_out_at_their_recorded_times_scaled_by_the_rate(rate):
    sink, go, _, _ = run(bag_of(STAMPS), PlayOptions(rate=rate))
    report = go()
    assert [p[2] for p in sink.published] == [bytes([i]) for i in range(len(STAMPS))]  # bag order
    assert [p[0] for p in sink.published] == pytest.approx([s / rate for s in STAMPS], abs=1e-9)
    assert report.achieved_rate == pytest.approx(rate) and report.lateness()["max_ms"] == pytest.approx(0, abs=1e-6)
    assert report.published == {"/a": 3, "/b": 3} and report.loops == 1 and not report.stopped


def test_a_late_message_does_not_delay_the_ones_after_it():
    # Publishing the first message takes 0.3 s (a stalled writer): the next two go out late, at
    # once; the schedule is kept from the start, so message 3 (due at 0.5 s) is on time: no drift.
    sink, go, _, _ = run(bag_of(STAMPS), PlayOptions(), publish_cost_s={1: 0.3})
    report = go()
    assert [p[0] for p in sink.published] == pytest.approx([0.0, 0.3, 0.3, 0.5, 0.52, 1.0])
    assert report.lateness()["max_ms"] == pytest.approx(280.0)
    assert report.achieved_rate == pytest.approx(1.0)


def test_start_offset_skips_the_start_of_the_bag():
    sink, go, _, _ = run(bag_of(STAMPS), PlayOptions(start_offset=0.5))
    go()
    assert [p[2] for p in sink.published] == [bytes([3]), bytes([4]), bytes([5])]
    assert [p[0] for p in sink.published] == pytest.approx([0.0, 0.02, 0.5])


def test_start_offset_past_the_end_is_an_error():
    sink, go, _, _ = run(bag_of(STAMPS), PlayOptions(start_offset=2.0))
    with pytest.raises(BagError, match="past the bag's end"):
        go()


def test_loop_plays_again_one_message_gap_after_the_end_until_stopped():
    sink, go, _, control = run(bag_of(STAMPS), PlayOptions(loop=True))
    sink.on_publish = lambda: len(sink.published) == 2 * len(STAMPS) + 1 and control.stop()
    report = go()
    # The median gap of STAMPS is 0.02 s: the second loop starts 1.02 s after the first.
    expected = [*STAMPS, *(1.02 + s for s in STAMPS), 2.04]
    assert [p[0] for p in sink.published] == pytest.approx(expected)
    assert [p[2] for p in sink.published] == [bytes([i % len(STAMPS)]) for i in range(len(expected))]
    assert report.loops == 2 and report.stopped and report.achieved_rate == pytest.approx(1.0)


def test_pause_holds_messages_and_the_clock_and_resume_keeps_the_schedule():
    sink, go, time, control = run(bag_of(STAMPS), PlayOptions(clock_hz=10.0))
    time.actions = [(100.1, lambda: control.set_paused(True)), (102.1, lambda: control.set_paused(False))]
    report = go()
    times = [p[0] for p in sink.published]
    assert times[:3] == pytest.approx([0.0, 0.02, 0.04])
    assert times[3:] == pytest.approx([2.5, 2.52, 3.0])  # 2 s later: the pause's length
    assert report.paused_s == pytest.approx(2.0) and report.achieved_rate == pytest.approx(1.0)
    # While paused the bag's clock stands at 0.1 s; it never goes back.
    during = [ns for t, ns in sink.clocks if 0.15 < t < 2.05]
    assert during and all(ns == ORIGIN + round(0.1 * NS) for ns in during)
    bag_times = [ns for _, ns in sink.clocks]
    assert bag_times == sorted(bag_times) and bag_times[0] == ORIGIN


def test_clock_follows_the_bag_time_at_its_rate():
    sink, go, _, _ = run(bag_of(STAMPS), PlayOptions(rate=2.0, clock_hz=20.0))
    go()
    assert len(sink.clocks) >= 10  # 0.5 s of wall time at 20 Hz
    for wall, ns in sink.clocks:
        assert ns == pytest.approx(ORIGIN + wall * 2.0 * NS, abs=1e3)


def test_start_paused_waits_for_resume():
    sink, go, time, control = run(bag_of(STAMPS), PlayOptions(start_paused=True))
    time.actions = [(105.0, lambda: control.set_paused(False))]
    report = go()
    assert sink.published[0][0] == pytest.approx(5.0) and report.achieved_rate == pytest.approx(1.0)


@pytest.mark.parametrize("bad, match", [(dict(rate=0.0), "rate"), (dict(rate=float("nan")), "rate"),
                                        (dict(start_offset=-1.0), "start offset"),
                                        (dict(clock_hz=float("inf")), "clock rate")])
def test_bad_options_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        PlayOptions(**bad)


def test_remap_rules():
    assert parse_remap(["/cam/image:=/camera/image_raw"]) == (("/cam/image", "/camera/image_raw"),)
    with pytest.raises(ValueError, match="expected OLD:=NEW"):
        parse_remap(["/cam/image=/camera/image_raw"])


def test_load_bag_keeps_order_and_recorded_qos_and_lists_what_it_skips(tmp_path):
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability

    from photon_policy.bags.recorder import INFINITE

    best_effort = Qos(QosHistory.KEEP_LAST, 5, QosReliability.BEST_EFFORT, QosDurability.VOLATILE, INFINITE,
                      INFINITE, QosLiveliness.AUTOMATIC, INFINITE, False)
    with BagWriter(tmp_path / "bag", "sqlite3") as bag:
        bag.add_topic("/imu", "sensor_msgs/msg/Imu", [best_effort])
        bag.add_topic("/clock", "rosgraph_msgs/msg/Clock")
        for k in range(4):
            bag.write("/imu" if k % 2 else "/clock", ORIGIN + k, bytes([k]))
    loaded = load_bag(tmp_path / "bag", PlayOptions(topics=("/imu", "/odom")))
    assert [m[2] for m in loaded.messages] == [bytes([1]), bytes([3])]
    assert loaded.topics["/imu"].qos == QosRecord(reliable=False, transient_local=False, depth=5)
    assert [str(s) for s in loaded.skipped] == [
        "/clock (rosgraph_msgs/msg/Clock, 2 messages): not in --topics",
        "/odom (unknown type, 0 messages): asked for with --topics, not in the bag"]
    with_clock = load_bag(tmp_path / "bag", PlayOptions(clock_hz=40.0))
    assert [m[1] for m in with_clock.messages] == ["/imu", "/imu"]
    assert [str(s) for s in with_clock.skipped] == [
        "/clock (rosgraph_msgs/msg/Clock, 2 messages): replaced by --clock (the bag's receive times); without "
        "--clock it is played"]
    with pytest.raises(BagError, match="no message to play"):
        load_bag(tmp_path / "bag", PlayOptions(topics=("/odom",)))
