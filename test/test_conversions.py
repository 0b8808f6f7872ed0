"""sensor_msgs/Image <-> arrays: every encoding, padded rows, byte order, broken messages."""

import numpy as np
import pytest

from topspark_ros.conversions.image import (array_to_image, ENCODINGS, image_to_array,
                                            ImageConversionError)

pytestmark = pytest.mark.ros


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_round_trip_every_encoding(encoding: str) -> None:
    """Round trip array -> Image -> array, exact for every supported encoding."""
    dtype, channels, _ = ENCODINGS[encoding]
    rng = np.random.default_rng(1)
    array = rng.integers(0, np.iinfo(dtype).max, (5, 7, channels), dtype=dtype)
    back, layout = image_to_array(array_to_image(array, encoding))
    np.testing.assert_array_equal(back, array)
    assert layout == ENCODINGS[encoding][2]


def test_padded_rows_are_skipped() -> None:
    """A step longer than the row: padding bytes are not read as pixels."""
    from sensor_msgs.msg import Image
    msg = Image(height=2, width=3, encoding='mono8', step=5)
    msg.data = bytes([1, 2, 3, 99, 99, 4, 5, 6, 99, 99])
    array, _ = image_to_array(msg)
    np.testing.assert_array_equal(array[:, :, 0], [[1, 2, 3], [4, 5, 6]])


def test_big_endian_sixteen_bit() -> None:
    """is_bigendian=1 mono16 data is read in network byte order."""
    from sensor_msgs.msg import Image
    msg = Image(height=1, width=2, encoding='mono16', step=4, is_bigendian=1)
    msg.data = bytes([0x01, 0x02, 0xff, 0x00])
    array, _ = image_to_array(msg)
    assert array.dtype == np.uint16
    assert array[0, :, 0].tolist() == [0x0102, 0xff00]


@pytest.mark.parametrize('fields,message', [
    ({'encoding': 'yuv422'}, 'unsupported'),
    ({'step': 2}, 'step'),
    ({'data': bytes(5)}, 'bytes of data'),
    ({'height': 0}, 'empty'),
])
def test_inconsistent_messages_are_refused(fields: dict, message: str) -> None:
    """Unknown encodings and sizes that do not fit the data raise with a reason."""
    from sensor_msgs.msg import Image
    msg = Image(height=2, width=3, encoding='mono8', step=3)
    msg.data = bytes(6)
    for key, value in fields.items():
        setattr(msg, key, value)
    with pytest.raises(ImageConversionError, match=message):
        image_to_array(msg)


def test_array_to_image_checks_the_array() -> None:
    """An array whose dtype or channel count does not match the encoding is refused."""
    with pytest.raises(ImageConversionError, match='rgb8'):
        array_to_image(np.zeros((2, 2, 3), np.uint16), 'rgb8')
