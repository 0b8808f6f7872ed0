"""The frame -> model input path: layouts, depths, crop, resize, invert, errors."""

import numpy as np
import pytest

from topspark_ros.core.preprocess import FrameError, FrameSpec, Preprocessor


def test_identity_for_a_frame_of_the_model_size() -> None:
    """A 28x28 mono8 frame is returned unchanged (no resize, no rounding drift)."""
    frame = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    out = Preprocessor()(frame, 'mono')
    assert out.dtype == np.uint8 and out.shape == (28, 28)
    np.testing.assert_array_equal(out, frame)


@pytest.mark.parametrize('layout,pixel', [
    ('rgb', (200, 100, 50)), ('bgr', (50, 100, 200)),
    ('rgba', (200, 100, 50, 7)), ('bgra', (50, 100, 200, 7)),
])
def test_channel_orders_give_the_bt601_luma(layout: str, pixel: tuple) -> None:
    """Uniform colour frames in every layout map to the same BT.601 luma."""
    frame = np.empty((40, 30, len(pixel)), np.uint8)
    frame[:] = pixel
    out = Preprocessor()(frame, layout)
    luma = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)  # 124.95 -> 125
    assert np.all(out == luma), np.unique(out)


def test_sixteen_bit_frames_scale_to_eight_bits() -> None:
    """A mono16 value v maps to round(255 v / 65535)."""
    frame = np.full((10, 10), 65535 // 2, np.uint16)
    out = Preprocessor(FrameSpec(5, 5))(frame, 'mono')
    assert np.all(out == round(255 * (65535 // 2) / 65535))


def test_center_crop_keeps_the_middle_and_the_aspect_ratio() -> None:
    """A wide frame is cropped to its centred square: the bright borders disappear."""
    frame = np.zeros((100, 300), np.uint8)
    frame[:, :100] = 255
    frame[:, 200:] = 255
    assert np.all(Preprocessor(crop='center')(frame, 'mono') == 0)
    stretched = Preprocessor(crop='none')(frame, 'mono')
    assert stretched[:, 0].min() == 255 and stretched[:, -1].min() == 255


def test_downscale_averages_an_area() -> None:
    """A 2x2 checkerboard of 4x4 blocks shrinks to its mean grey, not to aliasing."""
    block = np.kron(np.indices((14, 14)).sum(axis=0) % 2, np.ones((4, 4))) * 255
    out = Preprocessor(FrameSpec(7, 7))(block.astype(np.uint8), 'mono')
    assert np.all(np.abs(out.astype(int) - 128) <= 3), out  # corners: edge effects


def test_invert_and_rgb_output() -> None:
    """Invert maps x to 255 - x; an RGB model gets [3, h, w] with mono frames repeated."""
    frame = np.full((28, 28), 30, np.uint8)
    assert np.all(Preprocessor(invert=True)(frame, 'mono') == 225)
    out = Preprocessor(FrameSpec(28, 28, 3))(frame, 'mono')
    assert out.shape == (3, 28, 28) and np.all(out == 30)


@pytest.mark.parametrize('frame,layout,message', [
    (np.zeros((4, 4), np.float32), 'mono', 'uint8 or uint16'),
    (np.zeros((4, 4, 3), np.uint8), 'mono', 'shape'),
    (np.zeros((4, 4), np.uint8), 'rgb', 'shape'),
    (np.zeros((4, 4), np.uint8), 'yuv', 'layout'),
    (np.zeros((0, 4), np.uint8), 'mono', 'empty'),
])
def test_bad_frames_are_refused_with_a_reason(frame, layout, message) -> None:
    """Wrong dtype, shape, layout or an empty frame raise FrameError saying which."""
    with pytest.raises(FrameError, match=message):
        Preprocessor()(frame, layout)


def test_bad_settings_are_refused() -> None:
    """Unknown crop modes and impossible input specs raise ValueError."""
    with pytest.raises(ValueError, match='crop'):
        Preprocessor(crop='zoom')
    with pytest.raises(ValueError, match='channels'):
        FrameSpec(28, 28, 2)


def test_a_read_only_frame_gives_the_same_input_without_a_warning() -> None:
    # Raw frames are read in place from a message's bytes (read-only memory); torch warned
    # "The given NumPy array is not writable" at the classifier's first such frame. Checked in
    # a fresh process: torch warns once per process.
    import subprocess
    import sys
    code = """
import warnings
import numpy as np
from topspark_ros.core.preprocess import FrameSpec, Preprocessor
warnings.simplefilter('error')
rng = np.random.default_rng(0)
for shape, layout in (((64, 64, 3), 'rgb'), ((28, 28, 1), 'mono'), ((40, 40, 1), 'mono')):
    frame = rng.integers(0, 256, shape, dtype=np.uint8)
    locked = frame.copy()
    locked.flags.writeable = False
    pre = Preprocessor(FrameSpec(28, 28, 1))
    assert np.array_equal(pre(locked, layout), pre(frame, layout))
sixteen = rng.integers(0, 65536, (30, 30, 1), dtype=np.uint16)
locked = sixteen.copy()
locked.flags.writeable = False
assert np.array_equal(pre(locked, 'mono'), pre(sixteen, 'mono'))
"""
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
