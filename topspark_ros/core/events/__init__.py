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
    decoders and encoders of the driver encodings, one module per format (``evt3``:
    Prophesee EVT 3.0; ``mono``; ``libcaer_cmp`` and ``libcaer``: libcaer_driver), behind one
    factory;
``windows``
    windowers that cut a stream into windows by time or by event count;
``stream``
    the classifier's event pipeline: packets in, decoded and windowed, complete windows out;
``encode``
    the encoders from event windows to model input (spike trains, per-bin frames);
``dvs``
    a DVS emulator (log-intensity contrast threshold, per-pixel refractory period, noise);
``nmnist``
    a reader and writer of the N-MNIST binary format;
``files``
    event files (N-MNIST ``.bin``, ``.npz``, raw packets, bags) read into one recording;
``spool``
    event windows kept on disk while a data set is read, read back memory-mapped.

The N-MNIST-like data set made from real digits is in
:mod:`topspark_ros.core.data.synthetic_events`.
"""

import numpy as np

EVENT_DTYPE = np.dtype([('x', '<u2'), ('y', '<u2'), ('p', 'u1'), ('t', '<i8')])
"""The structured dtype of decoded events (see the module docstring)."""


def empty_events(n: int = 0) -> np.ndarray:
    """Return a zeroed event array of ``n`` rows."""
    return np.zeros(n, dtype=EVENT_DTYPE)


class EventEncodingError(ValueError):
    """Events or arguments that cannot be windowed or encoded (dtype, sizes, region, T)."""


def as_events(events: np.ndarray, what: str = 'events') -> np.ndarray:
    """
    Return ``events`` as a 1-d array of :data:`EVENT_DTYPE`.

    A structured array with the fields ``x``, ``y``, ``p`` and ``t`` of other types is
    converted; anything else raises :class:`EventEncodingError` naming ``what``.
    """
    events = np.asarray(events)
    if events.dtype != EVENT_DTYPE:
        if events.dtype.names is not None and set('xypt') <= set(events.dtype.names):
            try:
                return np.asarray(events.astype(EVENT_DTYPE).reshape(-1))
            except (TypeError, ValueError):
                pass
        raise EventEncodingError(f'{what} must be a structured array of EVENT_DTYPE '
                                 f'(topspark_ros.core.events), got dtype {events.dtype}')
    return events.reshape(-1)
