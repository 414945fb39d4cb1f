"""Fuzz tier (pytest -m fuzz): the pure cores that take outside input, 10,000 examples each.

The whole-bag property runs 300 examples in `make test` (each reads a bag through rosbags, ~25 ms);
`PHOTON_FUZZ_BAG_EXAMPLES=10000 make test-fuzz` runs it at the full 10,000 (the tier then takes ~6 minutes here).

Each property is what the rest of the stack relies on: a decoder returns a frame, None, or a
ValueError; a sanitised command is finite and in its limits; a damaged bag is read or refused
with BagError; a seed spec or `--set` item is parsed or refused with ValueError. Nothing else
(no other exception, no NaN, no hang). Budget: under 2 minutes for the tier on a 2-core machine.
"""
from __future__ import annotations

import math
import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image

from photon_policy.bags.reader import BagError, read_episodes
from photon_policy.policy.safety import SafetyConfig, SafetyLayer
from photon_policy.profiles import parse_overrides
from photon_policy.ros.camera import CameraIntake
from photon_policy.ros.images import CHANNELS, decode_image
from photon_policy.seeds import MAX_SEED, MAX_SEEDS, parse_seeds
from photon_policy.sim.drive_by_wire import DriveByWireConfig, sanitize_command

pytestmark = pytest.mark.fuzz
EXAMPLES = 10_000
WHOLE_BAG_EXAMPLES = int(os.environ.get("PHOTON_FUZZ_BAG_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**30, 10**30)


@st.composite
def raw_images(draw):
    """Image messages whose size, step, payload and encoding need not agree."""
    h, w = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    encoding = draw(st.sampled_from([*CHANNELS, "yuv422", "16UC1", ""]) | st.text(max_size=8))
    step = draw(st.integers(0, 200) | st.just(w * CHANNELS.get(encoding, 3)))
    size = draw(st.integers(0, 40 * 200) | st.just(h * step))
    data = draw(st.binary(min_size=min(size, 64), max_size=min(size, 64)))  # pattern repeated to `size`
    data = (data * (size // max(len(data), 1) + 1))[:size] if data else b""
    return Image(height=h, width=w, encoding=encoding, step=step, data=data)


@FUZZ
@given(raw_images())
def test_image_decoding_returns_a_frame_none_or_valueerror(msg):
    try:
        frame = decode_image(msg)
    except ValueError:
        return
    if frame is not None:
        assert frame.dtype == np.uint8 and frame.shape == (msg.height, msg.width, 3)


INTAKE = CameraIntake(16)


@FUZZ
@given(raw_images() | st.builds(lambda d, f: CompressedImage(format=f, data=d), st.binary(max_size=256),
                                st.sampled_from(["jpeg", "png", ""])))
def test_camera_intake_never_raises(msg):
    frame = INTAKE.frame(msg)
    assert frame is None or (frame.shape == (16, 16, 3) and frame.dtype == np.uint8)


DBW = DriveByWireConfig()


@FUZZ
@given(ANY_FLOAT, ANY_FLOAT)
def test_sanitised_commands_are_finite_and_in_limits(steering, speed):
    cmd = sanitize_command(steering, speed, DBW)
    assert math.isfinite(cmd.steering_angle) and abs(cmd.steering_angle) <= DBW.max_steering_angle
    assert math.isfinite(cmd.speed) and -DBW.max_reverse_speed <= cmd.speed <= DBW.max_speed


@FUZZ
@given(st.lists(st.tuples(ANY_FLOAT | st.none(), ANY_FLOAT, st.floats(allow_nan=True, allow_infinity=True)),
                min_size=1, max_size=3))
def test_safety_layer_outputs_are_finite_and_in_limits(commands):
    layer, config = SafetyLayer(SafetyConfig()), SafetyConfig()
    for steering, speed, stamp in commands:
        out_steering, out_speed, _ = layer.filter(steering, speed, stamp)
        assert math.isfinite(out_steering) and abs(out_steering) <= config.max_steering_angle
        assert math.isfinite(out_speed) and 0.0 <= out_speed <= config.max_speed


@FUZZ
@given(st.text(alphabet="0123456789-, ", max_size=24) | st.text(max_size=12))
def test_seed_specs_parse_within_bounds_or_are_refused(spec):
    try:
        seeds = parse_seeds(spec)
    except ValueError:
        return
    assert 0 < len(seeds) <= MAX_SEEDS and all(0 <= s <= MAX_SEED for s in seeds)


@FUZZ
@given(st.lists(st.text(max_size=16) | st.builds(lambda n, p, v: f"{n}.{p}={v}", st.text(max_size=5),
                                                   st.text(max_size=5), st.text(max_size=10)), max_size=4))
def test_set_overrides_parse_or_are_refused(items):
    try:
        out = parse_overrides(items)
    except ValueError:
        return
    assert all(node and params for node, params in out.items())


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory):
    from test_bag_reader import episode_records, write_bag
    bag = write_bag(tmp_path_factory.mktemp("fuzz") / "bag", episode_records())
    [mcap] = bag.glob("*.mcap")
    return bag, mcap.read_bytes()


def _damaged(data, original: bytes) -> bytes:
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):  # overwrite runs of bytes anywhere, then maybe cut the end
        at = data.draw(st.integers(0, len(damaged) - 1))
        run = data.draw(st.binary(min_size=1, max_size=32))
        damaged[at:at + len(run)] = run
    return bytes(damaged[:data.draw(st.integers(8, len(damaged)))])


def _read_or_refuse(bag) -> None:
    try:
        episodes = read_episodes(bag)
    except BagError:
        return
    for episode in episodes:
        a = episode.arrays
        for values in (a.commands, a.teleop, a.imu, a.odom):
            assert np.all(np.isfinite(values))


@FUZZ
@given(data=st.data())
def test_damaged_storage_files_are_read_or_refused_with_bagerror(small_bag, tmp_path_factory, data):
    """The MCAP file of a recording cut without its metadata.yaml (a killed recorder): our own record
    scanner, then decoding and alignment. 10,000 examples."""
    _, original = small_bag
    target = tmp_path_factory.getbasetemp() / "fuzz_storage"
    target.mkdir(exist_ok=True)
    (target / "bag_0.mcap").write_bytes(_damaged(data, original))
    _read_or_refuse(target)


@settings(FUZZ, max_examples=WHOLE_BAG_EXAMPLES)
@given(data=st.data())
def test_damaged_bags_are_read_or_refused_with_bagerror(small_bag, tmp_path_factory, data):
    """A whole bag (metadata.yaml intact, the MCAP damaged): through rosbags' reader first. Each example
    parses metadata.yaml twice (rosbags, and our count check), ~40 ms, hence fewer examples."""
    bag, original = small_bag
    target = bag.parent / "damaged"
    if not target.exists():
        shutil.copytree(bag, target)
    [mcap] = target.glob("*.mcap")
    mcap.write_bytes(_damaged(data, original))
    _read_or_refuse(target)
