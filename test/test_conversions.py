"""
Messages <-> arrays: image encodings, compressed images, results as vision_msgs.

Every image encoding, padded rows, byte order and broken messages; JPEG and PNG data, good
and corrupt.
"""

import dataclasses
import io
import math

import numpy as np
import pytest

from topspark_ros.conversions.image import (array_to_image, compressed_to_array, ENCODINGS,
                                            frame_to_array, image_to_array,
                                            ImageConversionError, stamp_ns)

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
    ({'encoding': 'yuv420'}, 'unsupported'),
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


def _image(encoding: str, rows: list, width: int, step: int = 0, big: bool = False):
    """Return a sensor_msgs/Image of ``rows`` (lists of byte values) as ``encoding``."""
    from sensor_msgs.msg import Image
    data = bytes(b for row in rows for b in row)
    return Image(height=len(rows), width=width, encoding=encoding,
                 step=step or len(rows[0]), is_bigendian=int(big), data=data)


# One 2x2 Bayer cell per pattern: R=10, G=20 and 31, B=40, in the pattern's order.
BAYER_CELLS = {
    'bayer_rggb8': [[10, 20], [31, 40]],
    'bayer_bggr8': [[40, 20], [31, 10]],
    'bayer_gbrg8': [[20, 40], [10, 31]],
    'bayer_grbg8': [[20, 10], [40, 31]],
}


@pytest.mark.parametrize('encoding', sorted(BAYER_CELLS))
def test_bayer_cells_become_one_colour(encoding: str) -> None:
    """Each 2x2 cell: its R, the mean of its two G (half up), its B, on all four pixels."""
    cell = BAYER_CELLS[encoding]
    # two cells side by side, the second one 100 brighter, rows padded by 3 bytes
    rows = [cell[0] + [v + 100 for v in cell[0]] + [7, 7, 7],
            cell[1] + [v + 100 for v in cell[1]] + [7, 7, 7]]
    array, layout = image_to_array(_image(encoding, rows, width=4, step=7))
    assert layout == 'rgb' and array.dtype == np.uint8 and array.shape == (2, 4, 3)
    expected = np.array([[10, 26, 40]] * 2 + [[110, 126, 140]] * 2, np.uint8)
    np.testing.assert_array_equal(array, np.stack([expected, expected]))


def test_bayer_odd_sizes_reuse_the_nearest_sample_of_each_colour() -> None:
    """A 3x3 RGGB image: the cut cells take their missing samples from the row/column before."""
    rows = [[10, 20, 11],
            [30, 40, 32],
            [12, 22, 13]]
    array, _ = image_to_array(_image('bayer_rggb8', rows, width=3))
    # cell (0, 0): R 10, G (20 + 30) / 2, B 40; cell (0, 1): R 11, G (20 + 32) / 2, B 40;
    # cell (1, 0): R 12, G (22 + 30) / 2, B 40; cell (1, 1): R 13, G (22 + 32) / 2, B 40.
    np.testing.assert_array_equal(array[:, :, 0], [[10, 10, 11], [10, 10, 11], [12, 12, 13]])
    np.testing.assert_array_equal(array[:, :, 1], [[25, 25, 26], [25, 25, 26], [26, 26, 27]])
    np.testing.assert_array_equal(array[:, :, 2], np.full((3, 3), 40))


def test_a_bayer_frame_for_a_model_is_one_pixel_a_cell_and_gives_the_same_input() -> None:
    """A model's frame was built at full size (repeated cells) and resized back: 9x the work."""
    from topspark_ros.conversions.image import frame_to_array
    from topspark_ros.core.preprocess import FrameSpec, Preprocessor
    rows = [[10, 20, 11], [30, 40, 32], [12, 22, 13]]
    msg = _image('bayer_rggb8', rows, width=3)
    full, _ = image_to_array(msg)
    cells, layout = frame_to_array(msg, size=(28, 28))
    assert layout == 'rgb' and cells.shape == (2, 2, 3)
    np.testing.assert_array_equal(cells, full[::2, ::2])
    # A smooth 480x640 scene, as a camera sees one: the model input of the cells is the full
    # frame's to within a grey level or two (the resize's filter, not the colours, differs).
    y, x = np.mgrid[0:480, 0:640]
    scene = np.stack([(x * 255 // 639), (y * 255 // 479), ((x + y) * 255 // 1118)], axis=-1)
    mosaic = np.empty((480, 640), np.uint8)
    for index, channel in enumerate((0, 1, 1, 2)):  # R G / G B
        mosaic[index // 2::2, index % 2::2] = scene[index // 2::2, index % 2::2, channel]
    msg = _image('bayer_rggb8', mosaic.tolist(), width=640)
    grey, colour = FrameSpec(height=28, width=28, channels=1), FrameSpec(height=32, width=32)
    for spec in (grey, colour):
        prepare = Preprocessor(spec=spec)
        cells, layout = frame_to_array(msg, spec.channels == 1, (spec.height, spec.width))
        assert cells.shape == (240, 320, 3)
        assert np.abs(prepare(cells, layout).astype(int)
                      - prepare(*image_to_array(msg)).astype(int)).max() <= 2


def test_bayer_sixteen_bit_big_endian() -> None:
    """bayer_rggb16 with is_bigendian: samples read in network order, kept 16-bit."""
    rows = [[0x01, 0x00, 0x02, 0x00], [0x02, 0x02, 0xff, 0xff]]
    array, layout = image_to_array(_image('bayer_rggb16', rows, width=2, big=True))
    assert layout == 'rgb' and array.dtype == np.uint16
    assert array[0, 0].tolist() == [0x0100, (0x0200 + 0x0202 + 1) // 2, 0xffff]


def test_bayer_needs_two_by_two_pixels() -> None:
    """A Bayer image of one row has no complete colour cell: refused with the reason."""
    with pytest.raises(ImageConversionError, match='2x2'):
        image_to_array(_image('bayer_rggb8', [[1, 2, 3, 4]], width=4))


# BT.601 limited range (as OpenCV's COLOR_YUV2RGB_UYVY, which cv_bridge uses): black, white,
# mid grey, and BT.601 red (Y 81, U 90, V 240).
YUV_PIXELS = [((16, 128, 128), (0, 0, 0)), ((235, 128, 128), (255, 255, 255)),
              ((126, 128, 128), (128, 128, 128)), ((81, 90, 240), (254, 0, 0))]


@pytest.mark.parametrize('encoding', ['uyvy', 'yuv422', 'yuyv', 'yuv422_yuy2'])
def test_yuv422_byte_orders(encoding: str) -> None:
    """Byte orders uyvy = yuv422 (U Y0 V Y1), yuyv = yuv422_yuy2 (Y0 U Y1 V); BT.601 colours."""
    uyvy = encoding in ('uyvy', 'yuv422')
    row = []
    for y, u, v in [yuv for yuv, _ in YUV_PIXELS]:  # each pair of pixels shares U and V
        row += [u, y, v, y] if uyvy else [y, u, y, v]
    array, layout = image_to_array(_image(encoding, [row + [0, 0], row + [9, 9]], width=8,
                                          step=len(row) + 2))
    assert layout == 'rgb' and array.dtype == np.uint8 and array.shape == (2, 8, 3)
    expected = np.repeat(np.array([rgb for _, rgb in YUV_PIXELS], np.uint8), 2, axis=0)
    np.testing.assert_array_equal(array[0], expected)
    np.testing.assert_array_equal(array[1], expected)


@pytest.mark.parametrize('encoding', ['uyvy', 'yuyv'])
def test_yuv422_for_a_grey_model_is_its_luma(encoding: str) -> None:
    """
    A grey model's YUV frame is its luma: the RGB path's grey to within one level.

    The colour conversion cost 4 to 8 ms of a VGA frame against 1 ms for all the rest (a user
    review); BT.601's luma weights cancel its chroma terms, so the grey is the scaled Y.
    """
    from topspark_ros.core.preprocess import FrameSpec, Preprocessor
    rng = np.random.default_rng(3)
    # Colours no channel of which clips (near black or white a clipped channel differs).
    y, u, v = rng.integers(50, 200, (6, 8)), rng.integers(112, 144, (6, 4)), \
        rng.integers(112, 144, (6, 4))
    quads = np.stack([y[:, 0::2], u, y[:, 1::2], v], axis=-1) if encoding == 'yuyv' else \
        np.stack([u, y[:, 0::2], v, y[:, 1::2]], axis=-1)
    msg = _image(encoding, quads.reshape(6, 16).tolist(), width=8)
    grey, layout = image_to_array(msg, mono=True)
    assert layout == 'mono' and grey.shape == (6, 8, 1) and grey.dtype == np.uint8
    expected = np.clip(np.round((y - 16) * 1.164), 0, 255)
    np.testing.assert_array_equal(grey[:, :, 0], expected)
    grey_model = Preprocessor(FrameSpec(6, 8, 1), crop='none')
    via_rgb = grey_model(*image_to_array(msg)).astype(int)
    assert np.abs(grey_model(grey, layout).astype(int) - via_rgb).max() <= 1
    assert image_to_array(msg)[1] == 'rgb'  # a colour model still gets RGB


@pytest.mark.parametrize('encoding', ['nv12', 'nv21', 'nv24'])
def test_semi_planar_yuv_frames_by_hand(encoding: str) -> None:
    """nv21 and nv24 are in Jazzy's image_encodings and were refused; BT.601 as the 4:2:2 ones."""
    colours = [yuv for yuv, _ in YUV_PIXELS]  # one colour per 2x2 block, 4 blocks side by side
    luma = [[y for y, _, _ in colours for _ in range(2)]] * 2
    pad = [7, 7, 7]  # rows padded: step 11 for 8 pixels
    if encoding == 'nv24':  # a U V pair per pixel, chroma rows of 2 step bytes
        chroma = [[c for _, u, v in colours for c in (u, v) * 2] + pad * 2] * 2
    else:  # a pair per 2x2 pixels, chroma rows of step bytes
        chroma = [[c for _, u, v in colours for c in ((v, u) if encoding == 'nv21' else (u, v))]
                  + pad]
    rows = [row + pad for row in luma] + chroma
    data = bytes(b for row in rows for b in row)
    from sensor_msgs.msg import Image
    msg = Image(height=2, width=8, encoding=encoding, step=11, data=data)
    array, layout = image_to_array(msg)
    assert layout == 'rgb' and array.dtype == np.uint8 and array.shape == (2, 8, 3)
    expected = np.repeat(np.array([rgb for _, rgb in YUV_PIXELS], np.uint8), 2, axis=0)
    np.testing.assert_array_equal(array, np.stack([expected, expected]))
    grey, layout = image_to_array(msg, mono=True)
    assert layout == 'mono' and grey[0, :, 0].tolist() == [0, 0, 255, 255, 128, 128, 76, 76]
    msg.data = data[:-1]
    with pytest.raises(ImageConversionError, match='bytes of data'):
        image_to_array(msg)
    if encoding != 'nv24':
        odd = Image(height=3, width=8, encoding=encoding, step=8, data=bytes(8 * 5))
        with pytest.raises(ImageConversionError, match='even width and height'):
            image_to_array(odd)


def _bt601_reference(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Return the module docstring's formula on full-size planes, float32, as first written."""
    luma = np.maximum(y.astype(np.float32) - 16.0, 0.0) * 1.164
    u, v = u.astype(np.float32) - 128.0, v.astype(np.float32) - 128.0
    rgb = np.stack([luma + 1.596 * v, luma - 0.813 * v - 0.391 * u, luma + 2.018 * u], axis=-1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


@pytest.mark.parametrize('encoding', ['yuyv', 'uyvy', 'nv12', 'nv21', 'nv24'])
def test_yuv_colour_of_every_pixel_is_the_formulas(encoding: str) -> None:
    """
    Random frames, padded rows: the chroma added per cell equals the upsampled formula's.

    (The conversion took 60 ms of a 1080p YUYV frame for an RGB model, 31 for rgb8 (a
    review); it adds each chroma term once per cell now, bit for bit the same.)
    """
    from sensor_msgs.msg import Image
    rng = np.random.default_rng(5)
    height, width, pad = 6, 10, 3
    y = rng.integers(0, 256, (height, width), dtype=np.uint8)
    cell = {'yuyv': (1, 2), 'uyvy': (1, 2), 'nv24': (1, 1)}.get(encoding, (2, 2))
    u, v = (rng.integers(0, 256, (height // cell[0], width // cell[1]), dtype=np.uint8)
            for _ in range(2))
    if encoding in ('yuyv', 'uyvy'):
        parts = [y[:, 0::2], u, y[:, 1::2], v] if encoding == 'yuyv' else \
            [u, y[:, 0::2], v, y[:, 1::2]]
        rows = np.stack(parts, axis=-1).reshape(height, -1)
        step = 2 * width + pad
        data = np.pad(rows, ((0, 0), (0, pad))).tobytes()
    else:
        step = width + pad
        first, second = (v, u) if encoding == 'nv21' else (u, v)
        chroma = np.stack([first, second], axis=-1).reshape(u.shape[0], -1)
        chroma_step = 2 * step // cell[0]
        data = np.pad(y, ((0, 0), (0, pad))).tobytes() + np.pad(
            chroma, ((0, 0), (0, chroma_step - chroma.shape[1]))).tobytes()
    msg = Image(height=height, width=width, encoding=encoding, step=step, data=data)
    array, layout = image_to_array(msg)
    full_u, full_v = (np.repeat(np.repeat(c, cell[0], axis=0), cell[1], axis=1) for c in (u, v))
    assert layout == 'rgb'
    np.testing.assert_array_equal(array, _bt601_reference(y, full_u, full_v))


def test_yuv_below_the_footroom_is_black_as_opencv_makes_it() -> None:
    """Y under 16 went below 0 before the chroma was added: (6, 200, 240) gave R 167, not 179."""
    array, _ = image_to_array(_image('uyvy', [[200, 6, 240, 6]], width=2))
    assert array[0, 0].tolist() == [179, 0, 145]  # cv2.COLOR_YUV2RGB_UYVY's, and NV12's


def test_yuv422_mixed_chroma_within_a_pair() -> None:
    """The two pixels of a pair keep their own luma and share the pair's chroma."""
    array, _ = image_to_array(_image('uyvy', [[128, 16, 128, 235]], width=2))
    assert array[0].tolist() == [[0, 0, 0], [255, 255, 255]]


def test_yuv422_needs_an_even_width() -> None:
    """4:2:2 stores pixels in pairs: an odd width is refused with the reason."""
    with pytest.raises(ImageConversionError, match='even width'):
        image_to_array(_image('yuyv', [[16, 128, 16, 128, 16, 128]], width=3))


def test_8uc3_is_bgr_and_8uc1_is_mono() -> None:
    """The OpenCV types: 8UC3 carries OpenCV's channel order (BGR), 8UC1 is one channel."""
    array, layout = image_to_array(_image('8UC3', [[1, 2, 3, 4, 5, 6, 0]], width=2, step=7))
    assert layout == 'bgr' and array.tolist() == [[[1, 2, 3], [4, 5, 6]]]
    array, layout = image_to_array(_image('8UC1', [[1, 2, 0], [3, 4, 0]], width=2, step=3))
    assert layout == 'mono' and array[:, :, 0].tolist() == [[1, 2], [3, 4]]


def test_16uc1_padded_big_endian() -> None:
    """16UC1 (depth cameras' millimetres) with padded rows in network byte order."""
    rows = [[0x12, 0x34, 0xab, 0xcd, 0xee], [0x00, 0x01, 0xff, 0xfe, 0xee]]
    array, layout = image_to_array(_image('16UC1', rows, width=2, step=5, big=True))
    assert layout == 'mono' and array.dtype == np.uint16
    assert array[:, :, 0].tolist() == [[0x1234, 0xabcd], [0x0001, 0xfffe]]


@pytest.mark.parametrize('big', [False, True])
def test_32fc1_is_clipped_to_zero_one(big: bool) -> None:
    """32FC1 intensities: [0, 1] maps to [0, 65535] (16-bit mono); outside clipped, NaN 0."""
    values = np.array([0.0, 0.5, 1.0, 2.0, -1.0, np.nan, np.inf, 0.25], np.float32)
    data = list(values.astype('>f4' if big else '<f4').tobytes())
    rows = [data[:16] + [0, 0], data[16:] + [0, 0]]
    array, layout = image_to_array(_image('32FC1', rows, width=4, step=18, big=big))
    assert layout == 'mono' and array.dtype == np.uint16 and array.shape == (2, 4, 1)
    assert array[:, :, 0].tolist() == [[0, 32768, 65535, 65535], [0, 0, 65535, 16384]]


def test_converted_encodings_check_their_sizes() -> None:
    """A step or data too short: the converted encodings say why as well."""
    with pytest.raises(ImageConversionError, match='step 7'):
        image_to_array(_image('yuyv', [[0] * 7], width=4))
    with pytest.raises(ImageConversionError, match='bytes of data'):
        msg = _image('32FC1', [[0] * 8], width=2)
        msg.height = 2
        image_to_array(msg)
    with pytest.raises(ImageConversionError, match='unsupported.*bayer_rggb8'):
        image_to_array(_image('rgb9', [[0]], width=1))


def _encoded(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    from PIL import Image as PilImage
    buffer = io.BytesIO()
    PilImage.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _compressed(data: bytes, fmt: str = 'png'):
    from sensor_msgs.msg import CompressedImage
    return CompressedImage(format=fmt, data=data)


def test_compressed_png_is_exact() -> None:
    """PNG (lossless): RGB, RGBA, mono 8-bit and mono 16-bit come back exactly."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    array, layout = compressed_to_array(_compressed(_encoded(rgb, 'PNG'), 'rgb8; png compressed '
                                                                          'rgb8'))
    assert layout == 'rgb'
    np.testing.assert_array_equal(array, rgb)
    rgba = rng.integers(0, 256, (4, 3, 4), dtype=np.uint8)
    array, layout = compressed_to_array(_compressed(_encoded(rgba, 'PNG')))
    assert layout == 'rgba'
    np.testing.assert_array_equal(array, rgba)
    mono = rng.integers(0, 256, (3, 7), dtype=np.uint8)
    array, layout = compressed_to_array(_compressed(_encoded(mono, 'PNG')))
    assert layout == 'mono' and array.shape == (3, 7, 1)
    np.testing.assert_array_equal(array[:, :, 0], mono)
    deep = rng.integers(0, 65536, (3, 4), dtype=np.uint16)
    array, layout = compressed_to_array(_compressed(_encoded(deep, 'PNG'), 'mono16; png'))
    assert layout == 'mono' and array.dtype == np.uint16
    np.testing.assert_array_equal(array[:, :, 0], deep)


@pytest.mark.parametrize('encoding', ['bayer_rggb8', 'bayer_gbrg16'])
def test_a_bayer_mosaic_in_png_is_debayered_as_the_raw_frame(encoding: str) -> None:
    """
    image_transport's PNG of a Bayer frame holds the mosaic: it is debayered, as sent raw.

    Read as grey, the mosaic's pattern was classified (a review). A Bayer frame it converted
    for JPEG names its target and is the image it holds.
    """
    from topspark_ros.conversions.image import compressed_mosaic, frame_to_array
    rng = np.random.default_rng(5)
    deep = encoding.endswith('16')
    mosaic = rng.integers(0, 65536 if deep else 256, (6, 10),
                          dtype=np.uint16 if deep else np.uint8)
    raw = array_to_image(mosaic[:, :, None], 'mono16' if deep else 'mono8')
    raw.encoding = encoding
    packed = _compressed(_encoded(mosaic, 'PNG'), f'{encoding}; png compressed ')
    for size in (None, (28, 28)):  # full size, and one pixel a cell for a model
        expected, layout = frame_to_array(raw, size=size)
        assert layout == 'rgb' and expected.shape[-1] == 3
        array, layout = frame_to_array(packed, size=size)
        assert layout == 'rgb' and array.dtype == mosaic.dtype
        np.testing.assert_array_equal(array, expected)
    assert compressed_mosaic(f'{encoding}; png compressed {encoding}') is not None
    grey = _compressed(_encoded(mosaic[:, :] // (257 if deep else 1), 'PNG'),
                       f'{encoding}; jpeg compressed mono8')
    assert compressed_mosaic(grey.format) is None
    assert compressed_to_array(grey)[1] == 'mono'
    assert compressed_mosaic('rgb8; png compressed ') is None and compressed_mosaic('') is None
    colour = _compressed(_encoded(np.zeros((4, 4, 3), np.uint8), 'PNG'),
                         f'{encoding}; png compressed ')
    with pytest.raises(ImageConversionError, match='Bayer mosaic is one sample a pixel'):
        compressed_to_array(colour)


def test_frame_to_array_takes_raw_and_compressed_frames_and_stamps_are_nanoseconds() -> None:
    """A camera frame of either transport becomes an array; a header stamp an int of ns."""
    mono = np.arange(12, dtype=np.uint8).reshape(3, 4)
    raw = array_to_image(mono, 'mono8')
    raw.header.stamp.sec, raw.header.stamp.nanosec = 3, 5
    for msg in (raw, _compressed(_encoded(mono, 'PNG'))):
        array, layout = frame_to_array(msg)
        assert layout == 'mono'
        np.testing.assert_array_equal(array[:, :, 0], mono)
    assert stamp_ns(raw.header) == 3_000_000_005


def test_compressed_jpeg_decodes_close_to_the_original() -> None:
    """JPEG (lossy): a smooth colour image comes back within a few levels, as RGB."""
    y, x = np.mgrid[0:16, 0:24]
    rgb = np.stack([x * 10, y * 15, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    array, layout = compressed_to_array(_compressed(_encoded(rgb, 'JPEG', quality=95),
                                                    'bgr8; jpeg compressed bgr8'))
    assert layout == 'rgb' and array.shape == (16, 24, 3) and array.dtype == np.uint8
    assert np.abs(array.astype(int) - rgb).max() <= 8
    gray = np.full((8, 8), 77, np.uint8)
    array, layout = compressed_to_array(_compressed(_encoded(gray, 'JPEG'), 'jpeg'))
    assert layout == 'mono' and np.abs(array.astype(int) - 77).max() <= 1


def test_a_large_jpeg_is_decoded_at_the_scale_the_model_input_needs(tmp_path) -> None:
    """
    A JPEG is decoded at the smallest scale that keeps 4 pixels per input pixel each way.

    A phone's 12 Mpixel photo took 300 ms to decode whole for a 28x28 input (45 ms so). The
    input it gives is the full decoding's to within 2 grey levels; the camera, a bag and an
    image folder decode it alike.
    """
    from topspark_ros.core.data.folder import read_image
    from topspark_ros.core.preprocess import FrameSpec, Preprocessor
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:960, 0:1280]
    grey = (127 + 60 * np.sin(x / 57.0) * np.cos(y / 77.0) + rng.normal(0, 12, x.shape))
    rgb = np.stack([grey, np.roll(grey, 17, 1), np.roll(grey, 27, 0)], -1)
    data = _encoded(rgb.clip(0, 255).astype(np.uint8), 'JPEG', quality=90)
    (tmp_path / 'photo.jpg').write_bytes(data)
    for spec in (FrameSpec(28, 28, 1), FrameSpec(32, 32, 3), FrameSpec(24, 40, 3)):
        whole, layout = compressed_to_array(_compressed(data, 'jpeg'))
        size = (spec.height, spec.width)
        scaled, _ = compressed_to_array(_compressed(data, 'jpeg'), size=size)
        assert whole.shape[:2] == (960, 1280) and scaled.shape[0] < 960
        assert scaled.shape[0] >= 4 * spec.height and scaled.shape[1] >= 4 * spec.width
        assert scaled.shape[0] < 8 * spec.height or scaled.shape[1] < 8 * spec.width
        prepare = Preprocessor(spec)
        difference = np.abs(prepare(whole, layout).astype(int)
                            - prepare(scaled, layout).astype(int))
        assert difference.max() <= 2 and difference.mean() < 1.0
        from_folder, _ = read_image(tmp_path / 'photo.jpg', size)
        np.testing.assert_array_equal(from_folder, scaled[..., :from_folder.shape[-1]]
                                      if from_folder.ndim == 3 else scaled[..., 0])
    png = _encoded(rgb[:200, :200].clip(0, 255).astype(np.uint8), 'PNG')  # not a JPEG: whole
    assert compressed_to_array(_compressed(png), size=(28, 28))[0].shape[:2] == (200, 200)


@pytest.mark.parametrize('width, height, orientation', [
    (1920, 1080, 1), (2592, 1944, 1), (1001, 667, 1), (1920, 1080, 6)])
def test_a_jpeg_decoded_at_a_reduced_scale_is_cropped_where_the_whole_one_is(
        width, height, orientation) -> None:
    """
    The scale keeps the centre crop on whole pixels: the input stays within 2 grey levels.

    1920x1080 at 1/8 was cropped from 416 instead of 420 (52 reduced pixels, 52.5 were
    asked), and sharp edges moved the input by up to 19 levels (a review). An image turned by
    its EXIF orientation is cropped upright.
    """
    from PIL import Image as PilImage

    from topspark_ros.core.preprocess import FrameSpec, Preprocessor
    y, x = np.mgrid[0:height, 0:width]
    scene = np.zeros((height, width, 3), np.uint8)  # an object with sharp edges
    scene[((x - width / 2) / (width / 5)) ** 2 + ((y - height / 2) / (height / 3)) ** 2 < 1] = \
        (230, 200, 180)
    scene[(abs(x - width / 2) < width / 9) & (abs(y - height / 2) < height / 20)] = 10
    buffer = io.BytesIO()
    exif = PilImage.Exif()
    exif[0x0112] = orientation
    PilImage.fromarray(scene).save(buffer, format='JPEG', quality=90, exif=exif.tobytes())
    data = buffer.getvalue()
    whole, layout = compressed_to_array(_compressed(data, 'jpeg'))
    upright = (width, height) if orientation == 1 else (height, width)
    assert whole.shape[:2] == upright[::-1]
    shapes = []
    for spec in (FrameSpec(28, 28, 1), FrameSpec(32, 32, 3), FrameSpec(64, 48, 1)):
        scaled, _ = compressed_to_array(_compressed(data, 'jpeg'),
                                        size=(spec.height, spec.width))
        shapes.append(scaled.shape[:2])
        prepare = Preprocessor(spec)
        difference = np.abs(prepare(whole, layout).astype(int)
                            - prepare(scaled, layout).astype(int))
        assert difference.max() <= 2, (spec, scaled.shape)
    if (width, height) == (1920, 1080):  # 1/4 for 28x28 (1/8 would move the crop)
        assert shapes[0] == (upright[1] // 4, upright[0] // 4)


def test_an_image_no_camera_sends_is_averaged_down_for_the_model_input(tmp_path) -> None:
    """
    An image of more than 16.8 Mpixel is box-averaged in Pillow first; frames and photos not.

    A 65 kB palette PNG of 8192x8192 (within the pixel limit) took 1.4 GB and 4 s through the
    arrays and the preprocessing of its 67 Mpixel (a user review). A first version reduced
    every large enough image: phone photos moved by up to 6 grey levels, and the colour under
    transparent pixels went black (a review); images a camera sends are read whole.
    """
    from PIL import Image as PilImage

    from topspark_ros.core.data.folder import read_image
    y, x = np.mgrid[0:960, 0:1280]
    grey = (127 + 60 * np.sin(x / 57.0) * np.cos(y / 77.0)).clip(0, 255).astype(np.uint8)
    png = _encoded(grey, 'PNG')
    assert compressed_to_array(_compressed(png), size=(28, 28))[0].shape[:2] == (960, 1280)
    for mode, colour, layout in (('P', 3, 'rgb'), ('RGBA', (255, 255, 255, 0), 'rgb'),
                                 ('I;16', 40000, 'mono')):
        bomb = io.BytesIO()
        PilImage.new(mode, (8192, 8192), colour).save(bomb, format='PNG')
        assert len(bomb.getvalue()) < 300_000  # a few hundred kB
        (tmp_path / f'{mode}.png').write_bytes(bomb.getvalue())
        array, got = compressed_to_array(_compressed(bomb.getvalue()), size=(28, 28))
        assert got == layout and array.shape[:2] == (128, 128)  # reduced 64 times each way
        if mode == 'RGBA':  # the colour under alpha 0 is kept, as the whole image gives it
            assert (array == 255).all()
        if mode == 'I;16':
            assert array.dtype == np.uint16 and (array == 40000).all()
        from_folder, _ = read_image(tmp_path / f'{mode}.png', (28, 28))
        np.testing.assert_array_equal(from_folder, array[..., 0] if mode == 'I;16' else array)


def test_compressed_palette_png_becomes_rgb() -> None:
    """A palette PNG (mode P) is expanded to its RGB colours."""
    from PIL import Image as PilImage
    image = PilImage.new('P', (2, 1))
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    array, layout = compressed_to_array(_compressed(buffer.getvalue()))
    assert layout == 'rgb' and array.tolist() == [[[0, 0, 0], [255, 0, 0]]]


@pytest.mark.parametrize('data,reason', [
    (b'', "empty 'jpeg' image: no data"),
    (b'not an image at all', 'are not JPEG or PNG'),
    (b'GIF89a' + bytes(40), 'are not JPEG or PNG'),  # a format image_transport does not send
], ids=['empty', 'text', 'gif'])
def test_compressed_garbage_is_refused(data: bytes, reason: str) -> None:
    """Data that is no JPEG or PNG raises ImageConversionError (a ValueError) with the reason."""
    with pytest.raises(ImageConversionError, match=reason):
        compressed_to_array(_compressed(data, 'jpeg'))


def test_compressed_depth_is_refused_with_that_reason() -> None:
    """It read as an opaque Pillow error naming a BytesIO object (a user review)."""
    depth = _compressed(bytes(12) + _encoded(np.zeros((4, 4), np.uint8), 'PNG'),
                        '16UC1; compressedDepth')
    with pytest.raises(ImageConversionError,
                       match=r"'16UC1; compressedDepth': compressedDepth images are not read"):
        compressed_to_array(depth)


def test_data_of_another_format_says_what_is_read_and_pillows_bomb_warning_is_not_printed(
        monkeypatch) -> None:
    """A BMP read 'cannot identify image file <_io.BytesIO object at 0x7f42...>' (a review)."""
    import warnings

    from PIL import Image as PilImage
    with pytest.raises(ImageConversionError, match=r"62 bytes of 'bmp' image data are not JPEG "
                       r'or PNG \(the compressed formats read; they begin 42 4d 00'):
        compressed_to_array(_compressed(b'BM' + bytes(60), 'bmp'))
    # Pillow warns of 'decompression bombs' past its own limit; max_pixels is the one here.
    monkeypatch.setattr(PilImage, 'MAX_IMAGE_PIXELS', 10)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        array, _ = compressed_to_array(_compressed(_encoded(np.zeros((4, 4), np.uint8), 'PNG'),
                                                   'png'))
    assert array.shape == (4, 4, 1)


def test_compressed_truncated_and_huge_are_refused() -> None:
    """A cut-off PNG/JPEG fails to decode; a header claiming too many pixels is not decoded."""
    rgb = np.full((32, 32, 3), 200, np.uint8)
    for fmt in ('PNG', 'JPEG'):
        data = _encoded(rgb, fmt)
        with pytest.raises(ImageConversionError, match='cannot decode'):
            compressed_to_array(_compressed(data[:len(data) // 2]))
    with pytest.raises(ImageConversionError, match='pixels'):
        compressed_to_array(_compressed(_encoded(rgb, 'PNG')), max_pixels=32 * 31)


def _prediction(scores: list, class_id: int, class_name: str = '', calibrated=None):
    from topspark_ros.core.energy import OpCounts
    from topspark_ros.core.session import Prediction
    scores = np.asarray(scores, np.float32)
    total = float(scores.sum())
    return Prediction(class_id=class_id, class_name=class_name,
                      confidence=float(scores[class_id]) / total if total > 0 else 0.0,
                      scores=scores, timesteps_used=8, timestep_budget=8, early_exit=False,
                      spike_count=3, ops=OpCounts(), latency_ms=1.0, energy_j=1e-6,
                      energy_preset='cmos45_fp32', calibrated_score=calibrated)


def test_prediction_as_vision_msgs_classification() -> None:
    """Class indices as ids, scores = share of the evidence (best first, no zeros), header."""
    from std_msgs.msg import Header
    from vision_msgs.msg import Classification

    from topspark_ros.conversions.results import prediction_to_vision_msg
    header = Header(frame_id='camera')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    prediction = _prediction([1.0, 6.0, 0.0, 3.0], 1, 'dog')
    msg = prediction_to_vision_msg(prediction, header)
    assert isinstance(msg, Classification)
    assert msg.header.frame_id == 'camera' and msg.header.stamp.sec == 12
    assert msg.header.stamp.nanosec == 345
    # The ids LabelInfo maps to names (dog 1, fish 3, cat 0), as vision_msgs consumers look up.
    assert [(h.class_id, h.score) for h in msg.results] == [
        ('1', pytest.approx(0.6)), ('3', pytest.approx(0.3)), ('0', pytest.approx(0.1))]
    assert msg.results[0].score == pytest.approx(prediction.confidence)
    silent = prediction_to_vision_msg(_prediction([0.0] * 4, 0), header)
    assert list(silent.results) == []  # no spike, no evidence: no hypothesis
    # A frame of one value (a lens cap): its share, often 1, is no probability (a review).
    import dataclasses
    blank = dataclasses.replace(_prediction([0.0, 9.0, 0.0, 0.0], 1), uniform=True)
    assert list(prediction_to_vision_msg(blank, header).results) == []


def test_a_calibrated_score_leads_and_the_others_stay_in_order_below_it() -> None:
    """
    With the profile's probability of being right, the best class scores it.

    The others keep their proportions, scaled to sum to at most 1 - p and to stay below p (a
    plain rescale to 1 - p put a second class above a low p, which consumers would take).
    """
    from std_msgs.msg import Header

    from topspark_ros.conversions.results import prediction_to_vision_msg
    header = Header(frame_id='camera')

    def scored(scores, class_id, p):
        msg = prediction_to_vision_msg(_prediction(scores, class_id, calibrated=p), header)
        return [(h.class_id, h.score) for h in msg.results]

    # shares 0.6 / 0.3 / 0.1, p 0.8: the others share 0.2 as 2:1
    assert scored([1.0, 6.0, 0.0, 3.0], 1, 0.8) == [
        ('1', pytest.approx(0.8)), ('3', pytest.approx(0.2 * 0.75)),
        ('0', pytest.approx(0.2 * 0.25))]
    # shares 0.4 / 0.35 / 0.25, p 0.3: 0.7 / 0.6 would lift class 2 to 0.41; scaled by p / 0.4
    assert scored([0.0, 0.0, 4.0, 3.5, 2.5], 2, 0.3) == [
        ('2', pytest.approx(0.3)), ('3', pytest.approx(0.35 * 0.75)),
        ('4', pytest.approx(0.25 * 0.75))]
    assert scored([0.0, 5.0, 0.0], 1, 0.84) == [('1', pytest.approx(0.84))]  # one class
    assert scored([0.0] * 3, 0, None) == []


def test_classification_built_as_bytes_is_the_message() -> None:
    """
    prediction_to_cdr's bytes read back as prediction_to_msg's message does, for random results.

    Text and score lists of every length up to the 8-byte alignment and past it (the padding
    before each field moves), both header kinds, extreme integers. As long as rclpy's own
    serialization (whose padding bytes are left as they were in memory, so only the length
    and the fields are comparable).
    """
    from rclpy.serialization import deserialize_message, serialize_message
    from std_msgs.msg import Header

    from topspark_ros.conversions.cdr import CdrHeader, header_msg
    from topspark_ros.conversions.results import (prediction_cdr_matches, prediction_to_cdr,
                                                  prediction_to_msg)
    from topspark_ros.core.energy import OpCounts
    from topspark_ros.msg import Classification
    rng = np.random.default_rng(5)

    def text(n: int) -> str:
        return ''.join(rng.choice(list('abc\u00e9\u4e2d_'), n))
    for case in range(300):
        prediction = _prediction(rng.random(int(rng.integers(0, 13))).tolist() or [0.0], 0,
                                 text(int(rng.integers(0, 11))))
        ops = OpCounts(accumulates=float(rng.integers(0, 2**40)), macs=float(case),
                       neuron_updates=float(rng.random() * 1e6), plasticity_updates=0.0)
        prediction = dataclasses.replace(
            prediction,
            class_id=int(rng.integers(-2**31, 2**31)), ops=ops,
            early_exit=bool(case % 2), spike_count=int(rng.integers(0, 2**63)),
            timesteps_used=int(rng.integers(0, 2**32)), energy_preset=text(case % 9),
            latency_ms=float(rng.random()), energy_j=float(rng.random() * 1e-3),
            scores=prediction.scores if case % 7 else np.zeros(0, np.float32),
            calibrated_score=float(rng.random()) if case % 4 else None,
            learnt=bool(case % 5 == 1), learning_ms=float(rng.random()) * (case % 5 == 1))
        header = CdrHeader(int(rng.integers(-2**31, 2**31)), int(rng.integers(0, 10**9)),
                           text(int(rng.integers(0, 10))))
        if case % 3 == 0:
            header = header_msg(header)  # a std_msgs/Header, as frames taken as messages
        assert isinstance(header, (CdrHeader, Header))
        dropped = int(rng.integers(0, 2**64, dtype=np.uint64))
        who = {key: text(int(rng.integers(0, 70)))
               for key in ('source', 'model_sha256', 'base_model_sha256')}
        data = prediction_to_cdr(prediction, header, dropped, **who)
        msg = prediction_to_msg(prediction, header_msg(header), dropped, **who)
        expected = serialize_message(msg)  # what a subscriber received before
        got, want = (deserialize_message(x, Classification) for x in (data, expected))
        if prediction.calibrated_score is None:  # not known: NaN (which equals nothing)
            assert math.isnan(got.score) and math.isnan(want.score), case
            got.score = want.score = 0.0
        else:
            assert got.score == np.float32(prediction.calibrated_score), case
        assert got == want, case
        assert got.learnt == prediction.learnt, case
        assert got.learning_ms == np.float32(prediction.learning_ms), case
        assert len(data) == len(expected), case
    assert prediction_cdr_matches()
    from topspark_ros.msg import TimestepCommand
    assert not prediction_cdr_matches(TimestepCommand)  # another message: not these bytes
    # A text with a NUL character ends there, as rclpy's serialization ends it.
    cut = dataclasses.replace(prediction, class_name='ab\x00cd')
    data = prediction_to_cdr(cut, header, 1)
    assert deserialize_message(data, Classification).class_name == 'ab'
    assert len(data) == len(serialize_message(prediction_to_msg(cut, header_msg(header), 1)))


def test_results_as_messages_of_an_older_classification_leave_out_the_new_fields() -> None:
    """
    The fallback for another installed message set fields an older one lacks (a review).

    prediction_to_msg raised AttributeError on every frame there: exactly the case the
    fallback to messages is for.
    """
    from topspark_ros.conversions.cdr import CdrHeader, header_msg
    from topspark_ros.conversions.results import prediction_to_msg
    from topspark_ros.msg import Classification
    new = ('source', 'model_sha256', 'base_model_sha256', 'score', 'learnt')

    def message(fields):  # a message class of these fields, all set, as rosidl makes them
        def init(self):
            for name in fields:
                setattr(self, name, None)
        return type('Classification', (), {'__slots__': fields, '__init__': init})
    older = message(tuple(name for name in Classification.get_fields_and_field_types()
                          if name not in new))
    msg = prediction_to_msg(_prediction([0.5, 0.5], 1, 'b'), header_msg(CdrHeader(1, 2, 'c')),
                            3, older, source='/c', model_sha256='ab', base_model_sha256='')
    assert msg.class_name == 'b' and msg.frames_dropped == 3
    assert not any(hasattr(msg, name) for name in new)
    between = message(older.__slots__ + new[:2])  # two of the three
    msg = prediction_to_msg(_prediction([0.5, 0.5], 1, 'b'), header_msg(CdrHeader(1, 2, 'c')),
                            3, between, source='/c', model_sha256='ab', base_model_sha256='')
    assert (msg.source, msg.model_sha256) == ('/c', 'ab')


def test_another_layout_of_classification_is_noticed(monkeypatch) -> None:
    """A Classification that serializes longer (a field added) is not built as bytes."""
    import rclpy.serialization

    from topspark_ros.conversions.results import prediction_cdr_matches
    serialize = rclpy.serialization.serialize_message
    assert prediction_cdr_matches()
    monkeypatch.setattr(rclpy.serialization, 'serialize_message',
                        lambda msg: serialize(msg) + bytes(8))  # as with a uint64 appended
    assert not prediction_cdr_matches()


def test_class_labels_and_label_info() -> None:
    """Unnamed classes are labelled by index; LabelInfo maps every index to its label."""
    from std_msgs.msg import Header
    from vision_msgs.msg import LabelInfo

    from topspark_ros.conversions.results import class_labels, label_info_msg
    assert class_labels((), 3) == ['0', '1', '2']
    assert class_labels(('a', '', 'c'), 3) == ['a', '1', 'c']
    with pytest.raises(ValueError, match='2 class names for 3 classes'):
        class_labels(('a', 'b'), 3)
    msg = label_info_msg(['a', 'b'], Header(frame_id='camera'), threshold=0.25)
    assert isinstance(msg, LabelInfo) and msg.header.frame_id == 'camera'
    assert [(c.class_id, c.class_name) for c in msg.class_map] == [(0, 'a'), (1, 'b')]
    assert msg.threshold == 0.25
    with pytest.raises(ValueError, match='65535'):
        label_info_msg([str(i) for i in range(65536)], Header())


def test_vision_info() -> None:
    """A VisionInfo carries the method, where the class map is and its version (an int32)."""
    from std_msgs.msg import Header
    from vision_msgs.msg import VisionInfo

    from topspark_ros.conversions.results import vision_info_msg
    msg = vision_info_msg('snn; score: calibrated (T=8)', '/robot/label_info', 3,
                          Header(frame_id='camera'))
    assert isinstance(msg, VisionInfo) and msg.header.frame_id == 'camera'
    assert (msg.method, msg.database_location, msg.database_version) == (
        'snn; score: calibrated (T=8)', '/robot/label_info', 3)
    with pytest.raises(ValueError, match='int32'):
        vision_info_msg('snn', '/label_info', 2 ** 31, Header())


def test_missing_vision_msgs_says_how_to_install(monkeypatch) -> None:
    """Without vision_msgs the import helper names the package and the way out."""
    import sys

    from topspark_ros.conversions.results import vision_msgs_types
    monkeypatch.setitem(sys.modules, 'vision_msgs', None)
    monkeypatch.setitem(sys.modules, 'vision_msgs.msg', None)
    with pytest.raises(ImportError, match='ros-\\$ROS_DISTRO-vision-msgs.*publish_vision_msgs'):
        vision_msgs_types()


def test_an_image_read_from_its_bytes_is_the_message() -> None:
    """Raw frames are taken serialized (issue 14): the same pixels, header and stamp."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from topspark_ros.conversions.cdr import CdrHeader, header_msg
    from topspark_ros.conversions.image import cdr_to_image, prepare_image_cdr_reading
    assert prepare_image_cdr_reading()
    rng = np.random.default_rng(3)
    frames = [array_to_image(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), 'rgb8'),
              _image('16UC1', [[0x12, 0x34, 0xab, 0xcd, 0xee], [0, 1, 0xff, 0xfe, 0xee]],
                     width=2, step=5, big=True),
              _image('bayer_rggb8', [[10, 20, 30, 40], [50, 60, 70, 80]], width=4, step=4)]
    for k, msg in enumerate(frames):
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000 + k, 123_456_789
        msg.header.frame_id = f'cam{k}'
        image, header = cdr_to_image(serialize_message(msg))
        got, want = image_to_array(image), image_to_array(msg)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == want[1] and got[0].dtype == want[0].dtype
        assert header == CdrHeader(1_700_000_000 + k, 123_456_789, f'cam{k}')
        assert header_msg(header) == msg.header
        assert stamp_ns(header) == stamp_ns(msg.header)
    with pytest.raises(ValueError, match='not a serialized sensor_msgs/Image'):
        cdr_to_image(b'\x00\x01\x00\x00' + bytes(range(7)))

    class Other:  # another version of the message: read as messages, not bytes
        @staticmethod
        def get_fields_and_field_types():
            fields = dict(Image.get_fields_and_field_types())
            fields['exposure_us'] = 'uint32'
            return fields
    assert not prepare_image_cdr_reading(Other)
