"""The stand-ins for cv_bridge and tf_transformations against references on the same frames and angles:
the numpy image codec against OpenCV's colour conversions (and cv_bridge where installed), the
quaternion helpers against the closed form (and tf_transformations where installed)."""
import importlib.util
import math

import cv2
import numpy as np
import pytest
from geometry_msgs.msg import Quaternion
from sensor_msgs.msg import Image

from photon_policy.ros import images, transforms
from photon_policy.ros.stamps import stamp_from_seconds

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (7, 9, 3), dtype=np.uint8)
REFERENCE = {"rgb8": (RGB, None), "bgr8": (cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2RGB),
             "rgba8": (cv2.cvtColor(RGB, cv2.COLOR_RGB2RGBA), cv2.COLOR_RGBA2RGB),
             "bgra8": (cv2.cvtColor(RGB, cv2.COLOR_RGB2BGRA), cv2.COLOR_BGRA2RGB),
             "mono8": (cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)}


def _message(encoding: str, pixels: np.ndarray, pad: int) -> Image:
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = np.zeros((pixels.shape[0], pixels.shape[1] * channels + pad), np.uint8)
    rows[:, :pixels.shape[1] * channels] = pixels.reshape(pixels.shape[0], -1)
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, step=rows.shape[1])
    msg.data = rows.tobytes()
    return msg


@pytest.mark.parametrize("encoding", sorted(REFERENCE))
@pytest.mark.parametrize("pad", [0, 5])
def test_numpy_codec_matches_opencv(encoding, pad):
    pixels, to_rgb = REFERENCE[encoding]
    want = pixels if to_rgb is None else cv2.cvtColor(pixels, to_rgb)
    np.testing.assert_array_equal(images.decode_numpy(_message(encoding, pixels, pad)), want)
    np.testing.assert_array_equal(images.decode_image(_message(encoding, pixels, pad)), want)


@pytest.mark.skipif(importlib.util.find_spec("cv_bridge") is None, reason="cv_bridge is not installed here")
@pytest.mark.parametrize("encoding", sorted(REFERENCE))
def test_numpy_codec_matches_cv_bridge(encoding):
    from cv_bridge import CvBridge

    msg = _message(encoding, REFERENCE[encoding][0], 3)
    np.testing.assert_array_equal(images.decode_numpy(msg), CvBridge().imgmsg_to_cv2(msg, "rgb8"))


def test_image_message_round_trip_and_refusals():
    msg = images.image_message(RGB, stamp_from_seconds(1.5), "camera_optical_frame")
    assert (msg.encoding, msg.height, msg.width, msg.header.frame_id) == ("rgb8", 7, 9, "camera_optical_frame")
    np.testing.assert_array_equal(images.decode_image(msg), RGB)
    assert images.decode_image(Image(encoding="16UC1", height=2, width=2, step=4, data=bytes(8))) is None
    for h, w in ((0, 0), (0, 96), (96, 0)):
        with pytest.raises(ValueError, match="nothing to show"):
            images.decode_image(Image(encoding="rgb8", height=h, width=w, step=w * 3))
    with pytest.raises(ValueError, match="needs"):
        images.decode_image(Image(encoding="rgb8", height=4, width=4, step=12, data=bytes(10)))


def test_compressed_frames_decode_like_the_raw_ones():
    _, png = cv2.imencode(".png", cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage(format="png")
    msg.data = png.tobytes()
    np.testing.assert_array_equal(images.decode_compressed(msg), RGB)
    with pytest.raises(ValueError, match="does not decode"):
        images.decode_compressed(CompressedImage(format="jpeg", data=b"\xff\xd8 not a jpeg"))


@pytest.mark.parametrize("yaw", [0.0, 0.3, -1.2, math.pi - 1e-6, -math.pi + 1e-6, 2.5])
def test_quaternions_match_the_closed_form(yaw):
    q = transforms.yaw_quaternion(yaw)
    assert (q.x, q.y) == (0.0, 0.0)
    assert (q.z, q.w) == pytest.approx((math.sin(yaw / 2), math.cos(yaw / 2)), abs=1e-12) or \
        (q.z, q.w) == pytest.approx((-math.sin(yaw / 2), -math.cos(yaw / 2)), abs=1e-12)
    assert transforms.yaw_from_quaternion(q) == pytest.approx(math.atan2(math.sin(yaw), math.cos(yaw)), abs=1e-9)
    scaled = Quaternion(x=0.0, y=0.0, z=3.0 * q.z, w=3.0 * q.w)  # not normalised: same heading
    assert transforms.yaw_from_quaternion(scaled) == pytest.approx(transforms.yaw_from_quaternion(q), abs=1e-9)
    with pytest.raises(ValueError, match="no direction"):
        transforms.yaw_from_quaternion(Quaternion(x=0.0, y=0.0, z=0.0, w=0.0))


def test_camera_intake_counts_frames_lost_in_transport():
    from photon_policy.ros.camera import CameraIntake

    intake = CameraIntake(8)
    for k in [*range(20), *range(23, 30), *range(40, 45)]:  # 3 frames missing, then 10
        msg = images.image_message(RGB, stamp_from_seconds(100.0 + 0.02 * k), "camera")
        assert intake.frame(msg).shape == (8, 8, 3)
    assert intake.lost == 13 and intake.frames == 32
