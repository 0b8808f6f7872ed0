"""
Event-camera input: decode, emulate, store and encode events for the spiking models.

Decoding driver packets, emulating and storing event data, encoding events for the models; no
rclpy here (the classifier node's event mode lives in the node layer).

The common currency of every module below is a numpy structured array of :data:`EVENT_DTYPE`,
one row per event, ordered by time within a stream:

``x``, ``y``
    pixel column and row on the sensor (``uint16``), ``0 <= x < width``, ``0 <= y < height``;
``p``
    polarity (``uint8``): 1 = ON (brightness went up), 0 = OFF;
``t``
    time in microseconds (``int64``), continued across packets of one stream.

Modules
-------
``codecs``
    decoders and encoders of the driver encodings (``evt3``: Prophesee EVT 3.0; ``mono``);
``dvs``
    a DVS emulator (log-intensity contrast threshold, per-pixel refractory period, noise);
``nmnist``
    a reader and writer of the N-MNIST binary format;
``synthetic``
    the N-MNIST-like data set made from real digits moved through three saccades;
``encode``
    windows (by time or by event count) and the encoders from events to model input.
"""

import numpy as np

EVENT_DTYPE = np.dtype([('x', '<u2'), ('y', '<u2'), ('p', 'u1'), ('t', '<i8')])
"""The structured dtype of decoded events (see the module docstring)."""


def empty_events(n: int = 0) -> np.ndarray:
    """Return a zeroed event array of ``n`` rows."""
    return np.zeros(n, dtype=EVENT_DTYPE)
