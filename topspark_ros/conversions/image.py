"""
``sensor_msgs/Image`` and ``sensor_msgs/CompressedImage`` <-> numpy arrays.

An image message stores ``height`` rows of ``step`` bytes each (``step`` may exceed
``width x channels x bytes`` when rows are padded), with multi-byte samples in the byte order
given by ``is_bigendian``. :func:`image_to_array` returns an array ``[H, W, C]`` of ``uint8``
or ``uint16`` samples (a view, no copy, for 8-bit direct encodings) and the channel layout
that :mod:`topspark_ros.core.preprocess` understands. The encodings (names as in
``sensor_msgs/image_encodings.hpp``, read as cv_bridge reads them):

- direct (:data:`ENCODINGS`): ``mono8/16``, ``rgb8/16``, ``bgr8/16``, ``rgba8/16``,
  ``bgra8/16``, and OpenCV's ``8UC1``, ``16UC1`` (mono) and ``8UC3`` (no colour meaning in
  ROS; read in OpenCV's channel order, BGR, as cv_bridge hands it to OpenCV);
- Bayer (``bayer_rggb8``, ``bayer_bggr8``, ``bayer_gbrg8``, ``bayer_grbg8`` and their
  ``16`` variants) -> RGB of the same depth by 2x2 cells: every cell of the mosaic becomes
  one colour, ``(R, (G1 + G2 + 1) // 2, B)`` (half the colour resolution, no interpolation
  across cells; an odd last row or column reuses the row or column before it, which carries
  the missing colours). For a model input (``size`` given) one pixel per cell, half the
  size each way: the full size adds no information, and building it cost a 12 Mpixel frame
  154 ms against 17 (a user review); without ``size`` (a recorded PNG), the cell's colour
  given to its four pixels, full size. Models see far smaller inputs, so the lost colour
  detail does not matter; images need at least 2x2 pixels;
- YUV 4:2:2, 8-bit -> ``uint8`` RGB: ``uyvy`` and its old name ``yuv422`` (bytes
  ``U Y0 V Y1``), ``yuyv`` and its old name ``yuv422_yuy2`` (``Y0 U Y1 V``); each pair of
  pixels shares its U and V. ITU-R BT.601 limited range, as OpenCV's ``COLOR_YUV2RGB_UYVY``
  (which cv_bridge uses): ``R = 1.164 (Y-16) + 1.596 (V-128)``, ``G = 1.164 (Y-16) - 0.813
  (V-128) - 0.391 (U-128)``, ``B = 1.164 (Y-16) + 2.018 (U-128)``, rounded and clipped to
  [0, 255], with ``Y-16`` taken as 0 below 16 (as OpenCV does). The width must be even.
  For a grey model (``mono=True``) the luma alone, ``1.164 (Y-16)`` rounded and clipped, as
  ``uint8`` mono: the grey value of the RGB above to within rounding (BT.601's luma weights
  cancel the chroma terms; they differ only where a colour channel clips), without the
  colour conversion (a user review: 4 to 8 ms of a VGA frame against 1 ms for all the rest);
- YUV semi-planar, 8-bit, the same conversion: a plane of ``height`` luma rows of ``step``
  bytes, then the chroma plane, its pairs interleaved: ``nv12`` (4:2:0, U V) and ``nv21``
  (4:2:0, V U), ``height / 2`` rows of ``step`` bytes, a pair for each 2x2 pixels (even
  width and height); ``nv24`` (4:4:4, U V), ``height`` rows of ``2 step`` bytes, a pair for
  each pixel;
- ``32FC1`` -> ``uint16`` mono: intensities in the fixed range [0, 1] (OpenCV's convention
  for float images) map to [0, 65535]: ``round(65535 clip(x, 0, 1))``; NaN (no measurement)
  becomes 0. Depth images are not intensities: map their range to ``mono8`` first.

:func:`compressed_to_array` decodes ``sensor_msgs/CompressedImage`` (image_transport's
``compressed`` transport: JPEG or PNG) with Pillow; :func:`frame_to_array` takes either. Given
the model input's size, a JPEG is decoded at the smallest of its built-in scales (1/2, 1/4,
1/8) that still has :data:`JPEG_DRAFT_FACTOR` pixels per input pixel each way and keeps the
centre crop on whole pixels (:func:`draft_for`): the resize to a 28x28 or 32x32 input then
gives the same input to within 2 grey levels (0.6 on average), and the decoding costs a
fraction (a 12 Mpixel photo: 45 against 300 ms); an image of more than 16.8 Mpixel that
has no such scales (a PNG) is averaged down by the same rule once decoded
(:func:`reduce_for`), against decompression bombs.
:func:`cdr_to_image` reads an Image from its serialized bytes (a subscription taken raw,
:mod:`topspark_ros.conversions.cdr`), which :func:`image_to_array` then reads as a message.
"""

import io
import sys
from typing import Optional, Tuple
import warnings

import numpy as np

from topspark_ros.conversions.cdr import cdr_header, cdr_reader, CdrHeader, reads_like

# encoding -> (sample dtype, channels, channel layout for core.preprocess)
ENCODINGS = {
    'mono8': (np.uint8, 1, 'mono'),
    'mono16': (np.uint16, 1, 'mono'),
    '8UC1': (np.uint8, 1, 'mono'),
    '8UC3': (np.uint8, 3, 'bgr'),
    '16UC1': (np.uint16, 1, 'mono'),
    'rgb8': (np.uint8, 3, 'rgb'),
    'bgr8': (np.uint8, 3, 'bgr'),
    'rgba8': (np.uint8, 4, 'rgba'),
    'bgra8': (np.uint8, 4, 'bgra'),
    'rgb16': (np.uint16, 3, 'rgb'),
    'bgr16': (np.uint16, 3, 'bgr'),
    'rgba16': (np.uint16, 4, 'rgba'),
    'bgra16': (np.uint16, 4, 'bgra'),
}
# Bayer encoding -> (sample dtype, pattern of the top-left 2x2 cell, row by row)
BAYER_ENCODINGS = {
    f'bayer_{pattern}{bits}': (dtype, pattern)
    for pattern in ('rggb', 'bggr', 'gbrg', 'grbg')
    for bits, dtype in ((8, np.uint8), (16, np.uint16))
}
# YUV 4:2:2 encoding -> byte offsets of (Y0, U, Y1, V) in each 4-byte pixel pair
YUV422_ENCODINGS = {
    'uyvy': (1, 0, 3, 2),
    'yuv422': (1, 0, 3, 2),
    'yuyv': (0, 1, 2, 3),
    'yuv422_yuy2': (0, 1, 2, 3),
}
# YUV semi-planar encoding -> (pixels a chroma pair covers each way, places of U and V in it)
SEMI_PLANAR_ENCODINGS = {
    'nv12': (2, (0, 1)),
    'nv21': (2, (1, 0)),
    'nv24': (1, (0, 1)),
}
FLOAT_ENCODINGS = ('32FC1',)
SUPPORTED_ENCODINGS = (tuple(ENCODINGS) + tuple(BAYER_ENCODINGS) + tuple(YUV422_ENCODINGS)
                       + tuple(SEMI_PLANAR_ENCODINGS) + FLOAT_ENCODINGS)
COMPRESSED_FORMATS = ('JPEG', 'PNG')
MAX_COMPRESSED_PIXELS = 1 << 26  # 67 Mpixel (8192 x 8192): beyond it, not decoded
LITTLE_ENDIAN_HOST = sys.byteorder == 'little'

DEPTH_LIKE = {'16UC1': 'read over 0 to 65 535 (depth in millimetres reads nearly black)',
              '32FC1': 'read over [0, 1] (depth in metres reads white)'}
"""Encodings depth cameras publish, which the classifier reads as intensities (README)."""


def frame_encoding(msg) -> str:
    """
    Return the encoding of a frame: an Image's, or the one a CompressedImage was made from.

    image_transport's ``compressed`` plugin writes it first in ``format``, before a ``;``
    (``16UC1; png compressed``, ``rgb8; jpeg compressed bgr8``); '' when it does not say.
    """
    encoding = getattr(msg, 'encoding', None)
    if encoding is not None:
        return encoding
    text = getattr(msg, 'format', '') or ''
    return text.split(';')[0].strip() if ';' in text else ''


def depth_like(encoding: str) -> Optional[str]:
    """
    Return a warning for frames of an encoding depth cameras publish, else None.

    A depth topic remapped to the classifier by mistake classified silently: its frames read
    as near-black or white intensities (``DEPTH_LIKE``). ``encoding``: :func:`frame_encoding`
    (a depth topic through the ``compressed`` transport went unnoticed; a review).
    """
    how = DEPTH_LIKE.get(encoding)
    if how is None:
        return None
    return (f'frames are {encoding}, what depth cameras publish: {how}; is the input a depth '
            'topic? To classify depth, map its working range to mono8 first')


class ImageConversionError(ValueError):
    """An image message that cannot be read (unknown encoding, inconsistent sizes, bad data)."""


def image_to_array(msg, mono: bool = False, size: Optional[Tuple[int, int]] = None) -> tuple:
    """
    Return ``(array [H, W, C], layout)`` for a ``sensor_msgs/Image`` (module docstring).

    ``mono``: the frame is for a grey model; a YUV frame then gives its luma alone. ``size``:
    the model input ``(height, width)`` the frame is for; a Bayer frame then gives one pixel
    per 2x2 cell (half size).

    Raises :class:`ImageConversionError` for an unsupported encoding or a message whose
    ``height``, ``width``, ``step`` and ``data`` do not fit together.
    """
    encoding = msg.encoding
    if encoding in ENCODINGS:
        dtype, channels, layout = ENCODINGS[encoding]
        rows = _rows(msg, np.dtype(dtype), channels)
        return rows.reshape(rows.shape[0], -1, channels), layout
    if encoding in BAYER_ENCODINGS:
        dtype, pattern = BAYER_ENCODINGS[encoding]
        return _debayer(_rows(msg, np.dtype(dtype), 1), pattern, size is None), 'rgb'
    if encoding in YUV422_ENCODINGS:
        if int(msg.width) % 2:
            raise ImageConversionError(
                f'{encoding} stores pixels in pairs and needs an even width, got {msg.width}')
        pairs, offsets = _rows(msg, np.dtype(np.uint8), 2), YUV422_ENCODINGS[encoding]
        if mono:
            return _yuv422_luma(pairs, offsets), 'mono'
        return _yuv422_to_rgb(pairs, offsets), 'rgb'
    if encoding in SEMI_PLANAR_ENCODINGS:
        return _semi_planar(msg, mono)
    if encoding in FLOAT_ENCODINGS:
        rows = np.nan_to_num(_rows(msg, np.dtype(np.float32), 1), nan=0.0)
        scaled = np.round(np.clip(rows, 0.0, 1.0) * 65535.0).astype(np.uint16)
        return scaled[:, :, None], 'mono'
    raise ImageConversionError(
        f'unsupported image encoding {encoding!r} (supported: '
        f'{", ".join(SUPPORTED_ENCODINGS)})')


def _rows(msg, dtype: np.dtype, samples: int) -> np.ndarray:
    """
    Return the pixel samples ``[H, W x samples]`` of ``dtype`` (padding and byte order undone).

    ``samples``: samples per pixel (``dtype`` items). 8-bit samples are a view of ``data``.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * samples * dtype.itemsize
    if height < 1 or width < 1:
        raise ImageConversionError(f'empty image {width}x{height}')
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is shorter than a row of {width} {msg.encoding} pixels '
            f'({row_bytes} bytes)')
    data = msg.data
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if buffer.size < step * height:
        raise ImageConversionError(
            f'{buffer.size} bytes of data for {height} rows of {step} bytes '
            f'({step * height} bytes)')
    rows = buffer[:step * height].reshape(height, step)[:, :row_bytes]
    if dtype.itemsize > 1:
        order = '>' if msg.is_bigendian else '<'
        rows = np.ascontiguousarray(rows).view(dtype.newbyteorder(order)).astype(dtype)
    return rows


def _debayer(mosaic: np.ndarray, pattern: str, full_size: bool = True) -> np.ndarray:
    """
    Return RGB ``[H, W, 3]`` of a Bayer ``mosaic [H, W]`` by 2x2 cells (module docstring).

    ``pattern``: the colours of the top-left cell, row by row (``'rggb'``, ...).
    ``full_size`` False: one pixel per cell, ``[ceil(H / 2), ceil(W / 2), 3]``.
    """
    height, width = mosaic.shape
    if height < 2 or width < 2:
        raise ImageConversionError(
            f'a Bayer image needs at least 2x2 pixels (one colour cell), got {width}x{height}')
    # An odd last row/column is completed by reflection: index n mirrors n - 2, which has the
    # same place in the pattern, so every cell holds one sample of each of its colours.
    full = np.pad(mosaic, ((0, height % 2), (0, width % 2)), mode='reflect')
    cells = {}
    for index, colour in enumerate(pattern):
        cells.setdefault(colour, []).append(full[index // 2::2, index % 2::2])
    rgb = np.empty(cells['r'][0].shape + (3,), mosaic.dtype)
    rgb[:, :, 0] = cells['r'][0]
    rgb[:, :, 1] = (cells['g'][0].astype(np.uint32) + cells['g'][1] + 1) // 2
    rgb[:, :, 2] = cells['b'][0]
    if not full_size:
        return rgb
    return np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)[:height, :width]


def _yuv422_to_rgb(pairs: np.ndarray, offsets: tuple) -> np.ndarray:
    """
    Return ``uint8`` RGB ``[H, W, 3]`` of packed 4:2:2 rows ``[H, 2 W]`` (module docstring).

    ``offsets``: byte positions of ``(Y0, U, Y1, V)`` within each 4-byte pixel pair.
    """
    height = pairs.shape[0]
    quads = pairs.reshape(height, -1, 4)
    y0, u, y1, v = (quads[:, :, i] for i in offsets)
    luma = np.stack([y0, y1], axis=-1).reshape(height, -1)
    return _bt601_to_rgb(luma, u, v, (1, 2))


def _bt601_to_rgb(luma: np.ndarray, u: np.ndarray, v: np.ndarray,
                  cell: Tuple[int, int] = (1, 1)) -> np.ndarray:
    """
    Return ``uint8`` RGB ``[H, W, 3]`` of BT.601 limited-range planes (module docstring).

    ``u``, ``v``: one sample per ``cell`` (rows, columns) of pixels (4:2:2 ``(1, 2)``, 4:2:0
    ``(2, 2)``). Each chroma term is computed once per cell and added to the cell's pixels
    (not upsampled first), in place: the same float32 operations per pixel as written in the
    module docstring, in about half the time (a review: 60 ms of a 1080p YUYV frame for an
    RGB model, against 31 for rgb8; ``benchmarks/bench_frame_convert.py``,
    ``docs/benchmarks-ros.md``).
    """
    rows, cols = cell
    height, width = luma.shape
    y = luma.astype(np.float32)
    y -= 16.0
    np.maximum(y, 0.0, out=y)
    y *= 1.164  # as OpenCV: no footroom
    y = y.reshape(height // rows, rows, width // cols, cols)
    u = (u.astype(np.float32) - 128.0)[:, None, :, None]
    v = (v.astype(np.float32) - 128.0)[:, None, :, None]
    out = np.empty((height, width, 3), np.uint8)
    cells = out.reshape(height // rows, rows, width // cols, cols, 3)
    channel = np.empty_like(y)
    for index, terms in enumerate((((1.596, v),), ((-0.813, v), (-0.391, u)),
                                   ((2.018, u),))):
        np.copyto(channel, y)
        for factor, plane in terms:  # luma + 1.596 v; luma - 0.813 v - 0.391 u; luma + 2.018 u
            if factor > 0:
                channel += factor * plane
            else:
                channel -= -factor * plane
        np.round(channel, out=channel)
        np.clip(channel, 0, 255, out=channel)
        cells[..., index] = channel
    return out


def _semi_planar(msg, mono: bool) -> tuple:
    """Return ``(array, layout)`` of an ``nv12``/``nv21``/``nv24`` frame (module docstring)."""
    encoding = msg.encoding
    cover, (at_u, at_v) = SEMI_PLANAR_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 1 or width < 1:
        raise ImageConversionError(f'empty image {width}x{height}')
    if cover == 2 and (height % 2 or width % 2):
        raise ImageConversionError(f'{encoding} has a colour pair for each 2x2 pixels and '
                                   f'needs an even width and height, got {width}x{height}')
    if step < width:
        raise ImageConversionError(f'step {step} is shorter than a row of {width} {encoding} '
                                   f'luma samples ({width} bytes)')
    chroma_rows, chroma_step = height // cover, 2 * step // cover
    size = step * height + chroma_step * chroma_rows
    data = msg.data
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if buffer.size < size:
        raise ImageConversionError(
            f'{buffer.size} bytes of data for a {encoding} frame of {height} luma rows of '
            f'{step} bytes and {chroma_rows} chroma rows of {chroma_step} ({size} bytes)')
    luma = buffer[:step * height].reshape(height, step)[:, :width]
    if mono:
        return _LUMA_OF_Y[luma][:, :, None], 'mono'
    chroma = buffer[step * height:size].reshape(chroma_rows, chroma_step)
    pairs = chroma[:, :2 * width // cover].reshape(chroma_rows, width // cover, 2)
    u, v = pairs[:, :, at_u], pairs[:, :, at_v]
    return _bt601_to_rgb(luma, u, v, (cover, cover)), 'rgb'


_LUMA_OF_Y = np.clip(np.round((np.arange(256) - 16.0) * 1.164), 0, 255).astype(np.uint8)
"""BT.601 limited-range luma ``Y`` -> full-range grey, as :func:`_yuv422_to_rgb` scales it."""


def _yuv422_luma(pairs: np.ndarray, offsets: tuple) -> np.ndarray:
    """Return the ``uint8`` grey ``[H, W, 1]`` of packed 4:2:2 rows ``[H, 2 W]`` (its luma)."""
    height = pairs.shape[0]
    quads = pairs.reshape(height, -1, 4)
    luma = quads[:, :, [offsets[0], offsets[2]]].reshape(height, -1)
    return _LUMA_OF_Y[luma][:, :, None]


JPEG_DRAFT_FACTOR = 4
"""Pixels a JPEG decoded at reduced scale keeps per model input pixel, each way (draft_for)."""


def draft_for(image, size: Optional[Tuple[int, int]]) -> None:
    """
    Let Pillow decode the JPEG ``image`` (opened, not loaded) at a reduced scale for ``size``.

    ``size``: the model input ``(height, width)``; None, or an image that is not a JPEG:
    nothing. The scale is the smallest of 1, 1/2, 1/4, 1/8 that leaves at least
    :data:`JPEG_DRAFT_FACTOR` times ``size`` each way (so a centre crop of it, too) and at
    which the centre crop to the input's aspect is the full image's, scaled, on whole pixels
    (:func:`_exact_scale`): one rule for camera frames, bags and image folders, so that
    training decodes as the robot does.
    """
    if size is None or image.format != 'JPEG':
        return
    height, width = int(size[0]), int(size[1])
    full_w, full_h = image.size
    if image.getexif().get(_EXIF_ORIENTATION) in _EXIF_TRANSPOSED:
        full_w, full_h = full_h, full_w  # (cropped once turned upright: pil_to_array)
    for scale in (8, 4, 2):
        if full_w // scale >= width * JPEG_DRAFT_FACTOR and \
                full_h // scale >= height * JPEG_DRAFT_FACTOR and \
                _exact_scale(full_h, full_w, scale, width / height):
            image.draft(image.mode, (image.size[0] // scale, image.size[1] // scale))
            return


_EXIF_ORIENTATION = 0x0112
_EXIF_TRANSPOSED = frozenset({5, 6, 7, 8})
"""EXIF orientations that turn an image a quarter (its width becomes its height)."""


def _exact_scale(height: int, width: int, scale: int, aspect: float) -> bool:
    """
    Return whether an image decoded at ``1 / scale`` has the full one's centre crop, scaled.

    Off by a fraction of a reduced pixel, the crop moved the model input by up to 19 grey
    levels (1920x1080 at 1/8 cropped from 416 instead of 420; a review).
    """
    from topspark_ros.core.preprocess import center_window

    if height % scale or width % scale:
        return False
    reduced = center_window(height // scale, width // scale, aspect)
    return [v * scale for v in reduced] == list(center_window(height, width, aspect))


def compressed_to_array(msg, max_pixels: int = MAX_COMPRESSED_PIXELS,
                        size: Optional[Tuple[int, int]] = None) -> tuple:
    """
    Return ``(array [H, W, C], layout)`` for a ``sensor_msgs/CompressedImage``.

    Decodes JPEG or PNG (what image_transport's ``compressed`` transport sends; the format
    is read from the data; ``msg.format`` says only whether they hold a Bayer mosaic, which
    is debayered as a raw frame, :func:`compressed_mosaic`) with Pillow: grayscale
    gives ``uint8`` (``uint16`` for 16-bit PNG) ``'mono'``, colour gives ``uint8`` ``'rgb'``
    (``'rgba'`` with alpha); other modes (palette, CMYK, 1-bit) are converted to RGB or
    8-bit mono. Raises :class:`ImageConversionError` for data that is not a decodable JPEG
    or PNG, or whose header claims more than ``max_pixels`` pixels (checked before decoding,
    against decompression bombs). ``compressedDepth`` data (named so in ``msg.format``) is
    refused, with that reason. ``size``: the model input, for a JPEG decoded at reduced scale
    (:func:`draft_for`) and an image of more than 16.8 Mpixel averaged down
    (:func:`reduce_for`).
    """
    from PIL import Image as PilImage
    if 'compresseddepth' in (msg.format or '').lower():
        raise ImageConversionError(
            f'{msg.format!r}: compressedDepth images are not read (depth is not an intensity; '
            "subscribe intensity images, image_transport 'raw' or 'compressed')")
    data = bytes(msg.data)
    if not data:
        raise ImageConversionError(f'empty {msg.format or "compressed"!r} image: no data')
    pattern = compressed_mosaic(msg.format)
    try:
        with warnings.catch_warnings():  # (Pillow's bomb warning: max_pixels is the limit)
            warnings.simplefilter('ignore', PilImage.DecompressionBombWarning)
            image = PilImage.open(io.BytesIO(data), formats=COMPRESSED_FORMATS)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageConversionError(
                f'compressed image of {width}x{height} pixels exceeds the limit of '
                f'{max_pixels} pixels')
        if pattern is None:  # (a mosaic is neither drafted nor averaged: its cells are its
            draft_for(image, size)  # colours)
        image.load()
        array, layout = pil_to_array(image, size if pattern is None else None)
    except ImageConversionError:
        raise
    except PilImage.UnidentifiedImageError:  # (its text: a BytesIO object's address)
        raise ImageConversionError(
            f'{len(data)} bytes of {msg.format or "compressed"!r} image data are not JPEG or '
            f'PNG (the compressed formats read; they begin {data[:8].hex(" ")})') from None
    except Exception as exc:  # noqa: B902 - Pillow raises many types for corrupt data
        raise ImageConversionError(
            f'cannot decode {len(data)} bytes of {msg.format or "compressed"!r} image '
            f'data: {type(exc).__name__}: {exc}') from None
    if pattern is not None:
        if layout != 'mono':
            raise ImageConversionError(
                f'{msg.format!r}: a Bayer mosaic is one sample a pixel, but the image data '
                f'decode to {layout}')
        return _debayer(array.reshape(array.shape[:2]), pattern, size is None), 'rgb'
    if array.ndim == 2:
        array = array[:, :, None]
    return array, layout


def compressed_mosaic(format_text: str) -> Optional[str]:
    """
    Return the Bayer pattern (``'rggb'``, ...) of compressed data that hold the raw mosaic.

    image_transport's ``compressed`` plugin writes ``'<encoding>; <png|jpeg> compressed
    <target>'``: a Bayer frame goes into PNG as it is, with no target (``'bayer_rggb8; png
    compressed '``), and is to be debayered as a raw one (read as grey, the mosaic's pattern
    was classified; a review); converted for JPEG, it names its target (``mono8``, ``bgr8``)
    and is an image like any other. None for those and every other format.
    """
    encoding, _, rest = (format_text or '').partition(';')
    if encoding.strip() not in BAYER_ENCODINGS:
        return None
    target = rest.partition('compressed')[2].strip()
    if target and target not in BAYER_ENCODINGS:
        return None
    return BAYER_ENCODINGS[encoding.strip()][1]


def frame_to_array(msg, mono: bool = False, size: Optional[Tuple[int, int]] = None) -> tuple:
    """
    Return ``(array [H, W, C], layout)`` of a camera frame: an Image or a CompressedImage.

    :func:`compressed_to_array` for a message with a ``format`` field (CompressedImage, whose
    data carries its own encoding; ``size``: the model input, :func:`draft_for`),
    :func:`image_to_array` otherwise (``mono``: for a grey model; ``size``: a Bayer frame at
    half size).
    """
    if hasattr(msg, 'format'):
        return compressed_to_array(msg, size=size)
    return image_to_array(msg, mono, size)


def stamp_ns(header) -> int:
    """Return the stamp of a ``std_msgs/Header`` (or a :class:`CdrHeader`) in nanoseconds."""
    sec, nanosec, _ = cdr_header(header)
    return sec * 1_000_000_000 + nanosec


def cdr_to_image(data: bytes) -> tuple:
    """
    Return ``(image, header)``: the ``sensor_msgs/Image`` serialized (CDR) in ``data``.

    What a subscription taken raw hands over (``SubscriptionReader(raw=True)``): rclpy then
    neither builds a Python message nor copies the pixels into it (0.27 ms of CPU a VGA frame
    here, ``benchmarks/bench_image_take.py``). ``image`` has the Image's fields, its ``data``
    a read-only view of ``data`` (:func:`image_to_array` reads it as it reads a message);
    ``header`` is a :class:`~topspark_ros.conversions.cdr.CdrHeader`. Raises ValueError for
    bytes that do not hold an Image.
    """
    from topspark_ros.core.data.bag import IMAGE_TYPE
    image = cdr_reader(IMAGE_TYPE).read(data, 'sensor_msgs/Image')
    return image, CdrHeader.of(image.header)


def prepare_image_cdr_reading(msg_type=None) -> bool:
    """
    Make :func:`cdr_to_image` ready, and say whether it reads ``msg_type``'s images.

    ``msg_type``: the ``sensor_msgs/Image`` class installed (default: rclpy's). False when
    it has other fields than the definition read here: then take messages, not their bytes.
    The classifier calls this when it configures (its reader must not pause at the first
    frame to build the parser).
    """
    from rclpy.serialization import serialize_message

    from topspark_ros.core.data.bag import IMAGE_TYPE
    if msg_type is None:
        from sensor_msgs.msg import Image as msg_type
    if not reads_like(msg_type, IMAGE_TYPE):
        return False
    cdr_to_image(serialize_message(msg_type()))  # builds the rosbags parser
    return True


def pil_to_array(image, size: Optional[Tuple[int, int]] = None) -> tuple:
    """
    Return ``(array, layout)`` of a decoded Pillow image, as the classifier sees it.

    One rule for a camera's compressed frames (:func:`compressed_to_array`) and an image
    folder's files (:func:`topspark_ros.core.data.folder.read_image`), so that training sees
    what the robot sees: the EXIF orientation is applied (a phone's photo stands as its viewer
    shows it); grey gives ``'mono'`` (``uint16`` for 16-bit), colour ``'rgb'`` or ``'rgba'``
    (the preprocessing drops alpha, whatever it holds); grey with alpha gives the grey;
    palette, CMYK and 1-bit are converted. A floating-point image (TIFF mode ``F``, whose
    range is not known) raises ``ValueError`` rather than become black.

    ``size``: the model input ``(height, width)``; an image of more than
    :data:`REDUCE_ABOVE_PIXELS` is averaged down for it in Pillow first (:func:`reduce_for`).
    """
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == 'F':
        raise ValueError('a 32-bit floating-point image (its range is not known): save it as '
                         '8- or 16-bit')
    if mode.startswith('I;16') or mode == 'I':
        image = reduce_for(image, size)
        return np.clip(np.array(image), 0, 65535).astype(np.uint16), 'mono'
    if mode in ('1', 'LA', 'La'):
        image = image.convert('L')
    elif mode in ('PA', 'RGBa') or (mode == 'P' and 'transparency' in image.info):
        image = image.convert('RGBA')
    elif mode not in ('L', 'RGB', 'RGBA'):
        image = image.convert('RGB')
    image = reduce_for(image, size)
    return np.array(image, np.uint8), 'mono' if image.mode == 'L' else image.mode.lower()


REDUCE_ABOVE_PIXELS = 1 << 24
"""Images above this many pixels (16.8 Mpixel: beyond camera frames and phone photos) are
averaged down for the model input once decoded (:func:`reduce_for`)."""


def reduce_for(image, size: Optional[Tuple[int, int]]):
    """
    Return a decoded ``image`` of more than :data:`REDUCE_ABOVE_PIXELS` averaged down, or itself.

    A guard against images no camera sends (a 65 kB palette PNG of 8192x8192 took 1.4 GB
    and 4 s through the arrays and the preprocessing; a user review), not a speed-up of
    frames: averaged down, a centre crop starts a fraction of a pixel away from the whole
    image's (up to 9 grey levels of the model input at odd sizes; a review of the first
    version, which reduced every large enough image, JPEG phone photos after their draft
    too). By the largest power of 2 that leaves :data:`JPEG_DRAFT_FACTOR` times ``size``
    (the model input, ``(height, width)``; None: itself) each way, with Pillow's ``reduce``
    (a box average); alpha is dropped first (the preprocessing drops it; reduced with it,
    the colour under transparent pixels went black), 16-bit grey is reduced as 32-bit.
    """
    if size is None or image.width * image.height <= REDUCE_ABOVE_PIXELS:
        return image
    most = min(image.width // (int(size[1]) * JPEG_DRAFT_FACTOR),
               image.height // (int(size[0]) * JPEG_DRAFT_FACTOR))
    factor = 1 << (most.bit_length() - 1) if most >= 2 else 1
    if factor < 2:
        return image
    if image.mode in ('RGBA', 'RGBa'):
        image = image.convert('RGB')
    elif image.mode.startswith('I;16'):
        image = image.convert('I')
    return image.reduce(factor)


def array_to_image(array: np.ndarray, encoding: str, msg_type=None):
    """
    Return a ``sensor_msgs/Image`` holding ``array [H, W, C]`` (or ``[H, W]``) as ``encoding``.

    The header is left empty for the caller to fill. ``msg_type`` defaults to
    ``sensor_msgs.msg.Image``.
    """
    if encoding not in ENCODINGS:
        raise ImageConversionError(f'unsupported image encoding {encoding!r}')
    dtype, channels, _ = ENCODINGS[encoding]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] != channels or array.dtype != dtype:
        raise ImageConversionError(
            f'{encoding} needs a {np.dtype(dtype).name} array [H, W, {channels}], got '
            f'{array.dtype.name} {list(array.shape)}')
    if msg_type is None:
        from sensor_msgs.msg import Image as msg_type
    msg = msg_type()
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0 if LITTLE_ENDIAN_HOST else 1
    msg.step = int(array.shape[1] * channels * np.dtype(dtype).itemsize)
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg
