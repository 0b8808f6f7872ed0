"""
Throughput of the evt3 and mono event decoders on a realistic synthetic stream (one core).

The stream is what a Prophesee IMX636-class sensor emits while an edge sweeps the scene: row
segments ("bursts") of neighbouring pixels firing with one timestamp and polarity (encoded as
VECT_BASE_X + VECT_12 / VECT_8 words, as the sensor does), mixed with lone noise events
(EVT_ADDR_X), an EVT_TIME_LOW per new microsecond and an EVT_TIME_HIGH every 4096 us. A
second stream of lone events only is the worst case of evt3 (no vectors). A third, "sensor
mix", has the word mix of a real sensor at a moderate rate (1 Mev/s: many EVT_ADDR_Y and
EVT_TIME_LOW words, few vectors) and crosses the 24-bit wrap-around of the evt3 time (it
starts 0.25 s before 2^24 us). Each is built (seeded)
by the module's own stateful encoder as one continuous word stream and cut into packets of a
fixed byte size at arbitrary word boundaries, as metavision_driver publishes the raw sensor
buffers; the decoder carries its state from packet to packet. The mono stream holds the same
events cut into packets of the same duration as the evt3 packets (time_base per packet).

Before timing, every configuration is checked: the decoded events must equal the generated
ones. Timing excludes numba compilation (a warm-up pass runs first) and is the best of
``--repeats`` passes over all packets, including the per-packet Python call (counting pass,
allocation of the output array, state copy), i.e. what ``StreamDecoder.decode`` costs a node.

The CPU time of the process is reported beside the wall time: on a loaded machine the wall time
holds the time other processes had the core. ``--baseline FILE`` times a second version of
the codecs in the same run, alternating the two pass by pass, so both see the same load: a
version from before the codecs became a package (one module file, e.g. ``git show
3862dde:topspark_ros/core/events/codecs.py > /tmp/old.py``), which only needs
``make_decoder``. To compare two versions of the package, run each version's benchmark from
its own worktree (``PYTHONPATH=<worktree>``) one after the other.

Run single-threaded on one core: ``NUMBA_NUM_THREADS=1 taskset -c 1 python
benchmarks/bench_event_decode.py``.
"""

import argparse
import importlib.util
import json
import os
import platform
import sys
import time

import numpy as np

from topspark_ros.core.events import codecs, EVENT_DTYPE
from topspark_ros.core.events.codecs import base, evt3, make_decoder, make_encoder, stats

WIDTH, HEIGHT = 1280, 720  # IMX636


def make_stream(n_events: int, rate_hz: float, seed: int, noise_fraction: float = 0.15,
                mean_burst: float = 10.0, fill: float = 0.7) -> np.ndarray:
    """
    Return ``EVENT_DTYPE [~n_events]``: bursts of row segments plus lone noise events.

    A burst is a segment of ``1 + Geometric`` pixels (mean ``mean_burst``, at most 32) on one
    row starting at a uniform x, each pixel firing with probability ``fill``, all with one
    timestamp and polarity; a fraction ``noise_fraction`` of the events are lone events at
    uniform positions. Timestamps are uniform over ``n_events / rate_hz`` seconds (1 us
    resolution), sorted.
    """
    rng = np.random.default_rng(seed)
    duration_us = int(n_events / rate_hz * 1e6)
    n_noise = int(n_events * noise_fraction)
    n_bursts = int((n_events - n_noise) / (mean_burst * fill))
    lengths = np.minimum(rng.geometric(1.0 / mean_burst, n_bursts), 32)
    x0 = rng.integers(0, WIDTH - 32, n_bursts)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    offsets = np.arange(lengths.sum()) - starts
    burst_id = np.repeat(np.arange(n_bursts), lengths)
    keep = rng.random(offsets.size) < fill
    burst_id, offsets = burst_id[keep], offsets[keep]
    bt = rng.integers(0, duration_us, n_bursts)
    by = rng.integers(0, HEIGHT, n_bursts)
    bp = rng.integers(0, 2, n_bursts)
    burst = np.zeros(burst_id.size, EVENT_DTYPE)
    burst['x'] = x0[burst_id] + offsets
    burst['y'] = by[burst_id]
    burst['p'] = bp[burst_id]
    burst['t'] = bt[burst_id]
    noise = np.zeros(n_noise, EVENT_DTYPE)
    noise['x'] = rng.integers(0, WIDTH, n_noise)
    noise['y'] = rng.integers(0, HEIGHT, n_noise)
    noise['p'] = rng.integers(0, 2, n_noise)
    noise['t'] = rng.integers(0, duration_us, n_noise)
    events = np.concatenate([burst, noise])
    # Sort by time, keeping each burst's pixels together and in x order.
    order = np.lexsort((events['x'], events['p'], events['y'], events['t']))
    return events[order]


def word_mix(data: bytes) -> dict:
    """Return the fraction of evt3 words of each type in ``data``."""
    codes = np.frombuffer(data, '<u2') >> 12
    names = {0: 'ADDR_Y', 2: 'ADDR_X', 3: 'VECT_BASE_X', 4: 'VECT_12', 5: 'VECT_8',
             6: 'TIME_LOW', 8: 'TIME_HIGH'}
    counts = np.bincount(codes, minlength=16)
    return {names.get(c, hex(c)): round(float(counts[c]) / codes.size, 4)
            for c in range(16) if counts[c]}


SENSOR_STREAM_START_US = (1 << 24) - 250_000
"""First event time of the "sensor mix" stream: 0.25 s before the evt3 time wraps around."""


def load_baseline(path: str):
    """Return the codecs module stored in the file ``path`` (an earlier one-file version)."""
    spec = importlib.util.spec_from_file_location('baseline_codecs', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # numba's cache unpickles by module name
    spec.loader.exec_module(module)
    return module


def time_decode(encoding: str, packets: list, time_bases: list, repeats: int,
                modules: tuple = (codecs,)) -> list:
    """
    Return ``[(best wall s, best CPU s)]`` of decoding all ``packets``, one per module.

    One decoder per pass, every packet through ``StreamDecoder.decode``. The CPU time
    (``time.process_time``, this process only) is what the decoding costs one core; on a
    loaded machine the wall time also holds the time other processes had the core. With
    several codecs modules, their passes alternate (same load for each).
    """
    best = [[float('inf'), float('inf')] for _ in modules]
    for _ in range(repeats + 1):  # the first pass warms up (numba cache load, page faults)
        for k, module in enumerate(modules):
            decoder = module.make_decoder(encoding, WIDTH, HEIGHT)
            wall, cpu = time.perf_counter(), time.process_time()
            for seq, (data, tb) in enumerate(zip(packets, time_bases)):
                decoder.decode(data, seq=seq, time_base=tb)
            best[k][1] = min(best[k][1], time.process_time() - cpu)
            best[k][0] = min(best[k][0], time.perf_counter() - wall)
    return [tuple(b) for b in best]


def kernel_diagnostics(stream: bytes, chunk_words: int = 16384, repeats: int = 15) -> dict:
    """
    Return the cost per word of the evt3 kernels and the fixed cost of one ``decode`` call.

    The fast and the exact kernel and the counting pass are timed on each ``chunk_words``
    chunk of ``stream`` (the state it starts from restored before every run), best of
    ``repeats`` per chunk (robust to the machine's load), summed over the chunks. The call
    overhead is the CPU time of ``decode`` on a 2-word packet (one event), mean of 20,000.
    """
    words = np.frombuffer(stream, '<u2')
    chunks = [words[i:i + chunk_words] for i in range(0, words.size, chunk_words)]
    out = np.empty(12 * chunk_words + 1, EVENT_DTYPE)
    counts = np.zeros(stats.N_COUNTS, np.int64)
    state = np.zeros(base.N_STATE, np.int64)
    base.fresh_state(state)
    starts = []
    for chunk in chunks:
        starts.append(state.copy())
        evt3._evt3_decode(chunk, WIDTH, HEIGHT, True, state, counts, evt3._EVT3_TABLES, out)
    runs = {
        'fast kernel': lambda c, s: evt3._evt3_fast(c, WIDTH, HEIGHT, evt3._EVT3_TABLES, s,
                                                    counts, out),
        'exact kernel': lambda c, s: evt3._evt3_decode(c, WIDTH, HEIGHT, False, s, counts,
                                                       evt3._EVT3_TABLES, out),
        'counting pass': lambda c, s: base.event_bound(c, evt3._EVENTS_PER_WORD),
    }
    result = {}
    for name, run in runs.items():
        total = 0.0
        for chunk, start in zip(chunks, starts):
            best = float('inf')
            for _ in range(repeats):
                s = start.copy()
                t0 = time.perf_counter()
                run(chunk, s)
                best = min(best, time.perf_counter() - t0)
            total += best
        result[f'{name} ns/word'] = total / words.size * 1e9
    decoder = make_decoder('evt3', WIDTH, HEIGHT)
    decoder.decode(stream[:4096])
    tiny = stream[4096:4100]
    cpu = time.process_time()
    for _ in range(20000):
        decoder.decode(tiny)
    result['decode call overhead us'] = (time.process_time() - cpu) / 20000 * 1e6
    return result


def check_decode(encoding: str, packets: list, time_bases: list, events: np.ndarray) -> None:
    """Raise ``AssertionError`` unless decoding ``packets`` gives back ``events`` exactly."""
    decoder = make_decoder(encoding, WIDTH, HEIGHT, strict=True)
    out = np.concatenate([decoder.decode(d, seq=s, time_base=tb)
                          for s, (d, tb) in enumerate(zip(packets, time_bases))])
    assert np.array_equal(out, events), f'{encoding}: decoded events differ'
    assert decoder.stats.events == events.size


STREAMS = ('bursts', 'lone', 'sensor')
"""Streams of ``--streams``: bursts (realistic, edges), lone events (worst case), sensor mix."""


def make_named_stream(kind: str, args) -> np.ndarray:
    """Return the events of the stream ``kind`` (see the module docstring)."""
    if kind == 'bursts':
        return make_stream(args.events, args.rate_mev * 1e6, args.seed, noise_fraction=0.15)
    if kind == 'lone':
        return make_stream(args.events // 4, args.rate_mev * 1e6, args.seed, noise_fraction=1.0)
    # A real sensor at 1 Mev/s: 80 % lone events, short row segments (mean 2 pixels).
    events = make_stream(args.events // 8, 1e6, args.seed, noise_fraction=0.8, mean_burst=2.0)
    events['t'] += SENSOR_STREAM_START_US - int(events['t'][0])
    return events


def main() -> None:
    """Build the streams, check and time the decoders, print tables and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--events', type=int, default=8_000_000,
                        help='events of the bursts stream (lone: a quarter, sensor: an eighth)')
    parser.add_argument('--rate-mev', type=float, default=20.0,
                        help='event rate of the bursts and lone streams (million events/s)')
    parser.add_argument('--packet-kib', type=int, nargs='+', default=[4, 16, 32, 64, 256],
                        help='evt3 packet sizes; 32 KiB is about 1.1 ms of the bursts stream')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--streams', nargs='+', choices=STREAMS, default=list(STREAMS))
    parser.add_argument('--no-mono', action='store_true', help='time evt3 only')
    parser.add_argument('--baseline', metavar='FILE',
                        help='a one-file version of the codecs (before they became a package), '
                        'timed alternately with this one')
    args = parser.parse_args()

    baseline = load_baseline(args.baseline) if args.baseline else None
    rows = []
    print(f'NUMBA_NUM_THREADS={os.environ.get("NUMBA_NUM_THREADS")}, '
          f'loadavg {os.getloadavg()[0]:.2f}, {platform.processor() or platform.machine()}, '
          f'CPU affinity {sorted(os.sched_getaffinity(0))}')
    for kind in args.streams:
        print(f'\n== stream: {kind}')
        rows += run_stream(kind, make_named_stream(kind, args), args, baseline)
    print(f'loadavg at the end {os.getloadavg()[0]:.2f}')
    print(json.dumps({'rows': rows}))


def run_stream(kind: str, events: np.ndarray, args, baseline=None) -> list:
    """Check and time both decoders on ``events``; print the table; return its rows."""
    encoder = make_encoder('evt3', WIDTH, HEIGHT, self_contained=False)
    stream = encoder.encode(events).data
    duration_s = (int(events['t'][-1]) - int(events['t'][0])) * 1e-6
    print(f'stream: {events.size} events over {duration_s:.3f} s '
          f'({events.size / duration_s / 1e6:.1f} Mev/s), evt3 {len(stream)} bytes '
          f'({len(stream) / events.size:.2f} B/event, '
          f'{len(stream) / duration_s / 1e3 / 1e3:.1f} kB per ms)')
    mix = word_mix(stream)
    print('evt3 word mix:', ', '.join(f'{k} {v:.1%}' for k, v in mix.items()))
    diag = kernel_diagnostics(stream)
    print('diagnostics:', ', '.join(f'{k} {v:.2f}' for k, v in diag.items()))
    print('Mev/s and MB/s per CPU second of this process (one core); Mev/s wall: per '
          'wall-clock second, which includes time other processes held the core')
    print(f'{"codec":9} {"packet":>10} {"packets":>8} {"ms/packet":>10} {"us/packet":>10} '
          f'{"Mev/s":>8} {"MB/s":>8} {"Mev/s wall":>11}')
    rows = []
    modules = (codecs,) if baseline is None else (baseline, codecs)
    for kib in args.packet_kib:
        size = kib * 1024
        packets = [stream[i:i + size] for i in range(0, len(stream), size)]
        bases = [None] * len(packets)
        check_decode('evt3', packets, bases, events)
        timings = time_decode('evt3', packets, bases, args.repeats, modules)
        ms_per_packet = size / (len(stream) / duration_s) * 1e3
        for module, (wall, seconds) in zip(modules, timings):
            name = 'evt3' if module is codecs else 'evt3 base'
            row = {'stream': kind, 'events': int(events.size),
                   'evt3_bytes_per_event': len(stream) / events.size, 'word_mix': mix,
                   'diagnostics': diag, 'codec': name, 'packet_bytes': size,
                   'packets': len(packets), 'sensor_ms_per_packet': ms_per_packet,
                   'us_per_packet': seconds / len(packets) * 1e6,
                   'mev_per_s': events.size / seconds / 1e6,
                   'mb_per_s': len(stream) / seconds / 1e6,
                   'mev_per_s_wall': events.size / wall / 1e6}
            rows.append(row)
            print(f'{name:9} {kib:>7}KiB {len(packets):>8} {ms_per_packet:>10.3f} '
                  f'{row["us_per_packet"]:>10.1f} {row["mev_per_s"]:>8.1f} '
                  f'{row["mb_per_s"]:>8.1f} {row["mev_per_s_wall"]:>11.1f}')
    if args.no_mono:
        return rows
    # mono: packets of the same sensor duration as the evt3 packets.
    for kib in args.packet_kib:
        ms = kib * 1024 / (len(stream) / duration_s) * 1e3
        edges = np.searchsorted(events['t'], np.arange(int(events['t'][0]),
                                                       int(events['t'][-1]) + 1,
                                                       max(1, int(ms * 1e3))))
        edges = np.unique(np.concatenate([edges, [events.size]]))
        mono = make_encoder('mono', WIDTH, HEIGHT)
        encoded = [mono.encode(events[a:b]) for a, b in zip(edges[:-1], edges[1:])]
        packets = [p.data for p in encoded]
        bases = [p.time_base for p in encoded]
        n_bytes = sum(len(p) for p in packets)
        check_decode('mono', packets, bases, events)
        [(wall, seconds)] = time_decode('mono', packets, bases, args.repeats)
        row = {'stream': kind, 'events': int(events.size), 'codec': 'mono',
               'packet_bytes': n_bytes // len(packets),
               'packets': len(packets), 'sensor_ms_per_packet': ms,
               'us_per_packet': seconds / len(packets) * 1e6,
               'mev_per_s': events.size / seconds / 1e6, 'mb_per_s': n_bytes / seconds / 1e6,
               'mev_per_s_wall': events.size / wall / 1e6}
        rows.append(row)
        print(f'mono      {row["packet_bytes"] // 1024:>7}KiB {len(packets):>8} {ms:>10.3f} '
              f'{row["us_per_packet"]:>10.1f} {row["mev_per_s"]:>8.1f} {row["mb_per_s"]:>8.1f} '
              f'{row["mev_per_s_wall"]:>11.1f}')
    return rows


if __name__ == '__main__':
    main()
