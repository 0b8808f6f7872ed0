"""
``sensor_msgs/Image`` <-> numpy arrays, for every encoding the classifier accepts.

An image message stores ``height`` rows of ``step`` bytes each (``step`` may exceed
``width x channels x bytes`` when rows are padded), with multi-byte samples in the byte order
given by ``is_bigendian``. :func:`image_to_array` returns a view ``[H, W, C]`` (no copy for
8-bit data) and the channel layout that :mod:`topspark_ros.core.preprocess` understands.
"""

import sys

import numpy as np

# encoding -> (sample dtype, channels, channel layout for core.preprocess)
ENCODINGS = {
    'mono8': (np.uint8, 1, 'mono'),
    'mono16': (np.uint16, 1, 'mono'),
    '8UC1': (np.uint8, 1, 'mono'),
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
LITTLE_ENDIAN_HOST = sys.byteorder == 'little'


class ImageConversionError(ValueError):
    """An image message that cannot be read (unknown encoding, inconsistent sizes)."""


def image_to_array(msg) -> tuple:
    """
    Return ``(array [H, W, C], layout)`` for a ``sensor_msgs/Image``.

    Raises :class:`ImageConversionError` for an unsupported encoding or a message whose
    ``height``, ``width``, ``step`` and ``data`` do not fit together.
    """
    try:
        dtype, channels, layout = ENCODINGS[msg.encoding]
    except KeyError:
        raise ImageConversionError(
            f'unsupported image encoding {msg.encoding!r} (supported: '
            f'{", ".join(ENCODINGS)})') from None
    dtype = np.dtype(dtype)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
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
    return rows.reshape(height, width, channels), layout


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
