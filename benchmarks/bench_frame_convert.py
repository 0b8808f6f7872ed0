#!/usr/bin/env python3
"""
What turning one camera frame into the model's input costs, per encoding, for an RGB model.

The classifier converts a frame (``frame_to_array``) and then crops and resizes it
(:class:`~topspark_ros.core.preprocess.Preprocessor`) for a 32x32 RGB input. This times the
conversion and both together on one synthetic frame per encoding (random bytes, rows
unpadded), the paths and the encodings' order alternated, and prints the medians and the
ratio to the cheaper of rgb8 and bgr8 of the same size (no conversion). ``--against REV``
also times the conversion module of a git revision, alternated with this one, on the same
frames (their outputs are compared too).

Run: ``dev/in_env.sh python benchmarks/bench_frame_convert.py [--size 1080x1920]
[--rounds 15] [--against REV]``.
"""

import argparse
import importlib.util
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENCODINGS = ('rgb8', 'bgr8', 'yuyv', 'uyvy', 'nv12', 'nv24')


def _frame(encoding: str, height: int, width: int, rng) -> SimpleNamespace:
    """Return an Image-like frame of random bytes, rows unpadded."""
    per_row = {'rgb8': 3 * width, 'bgr8': 3 * width, 'yuyv': 2 * width, 'uyvy': 2 * width,
               'nv12': width, 'nv24': width}[encoding]
    size = {'nv12': per_row * height * 3 // 2, 'nv24': per_row * height * 3}.get(
        encoding, per_row * height)
    return SimpleNamespace(height=height, width=width, step=per_row, encoding=encoding,
                           is_bigendian=0, data=rng.integers(0, 256, size, np.uint8).tobytes())


def _module_at(rev: str):
    """Return ``topspark_ros.conversions.image`` as it was at git revision ``rev``."""
    text = subprocess.run(['git', 'show', f'{rev}:topspark_ros/conversions/image.py'],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / 'image_at_rev.py'
        path.write_text(text)
        spec = importlib.util.spec_from_file_location('image_at_rev', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def main() -> int:
    """Print the table; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
    parser.add_argument('--size', default='1080x1920', help='frame HxW (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=15, help='calls per path (default: 15)')
    parser.add_argument('--against', metavar='REV', help='git revision to time beside')
    args = parser.parse_args()
    from topspark_ros.conversions import image
    from topspark_ros.core.preprocess import FrameSpec, Preprocessor
    from topspark_ros.core.threads import set_torch_threads

    set_torch_threads()  # the classifier's default (torch's own, a thread a core, was 10x slower)

    height, width = (int(v) for v in args.size.split('x'))
    prepare = Preprocessor(FrameSpec(32, 32, 3))
    other = _module_at(args.against) if args.against else None
    rng = np.random.default_rng(0)
    frames = {e: _frame(e, height, width, rng) for e in ENCODINGS}
    paths = {'convert': lambda m: image.image_to_array(m, False, (32, 32)),
             'convert+prepare': lambda m: prepare(*image.image_to_array(m, False, (32, 32)))}
    if other is not None:
        paths[f'convert at {args.against}'] = lambda m: other.image_to_array(m, False, (32, 32))
        for encoding, frame in frames.items():
            a, b = image.image_to_array(frame), other.image_to_array(frame)
            assert a[1] == b[1] and np.array_equal(a[0], b[0]), f'{encoding}: outputs differ'
    times = {(e, p): [] for e in ENCODINGS for p in paths}
    for frame in frames.values():  # warm-up, not timed
        for call in paths.values():
            call(frame)
    for k in range(args.rounds):
        # The encodings' order turns each round (rgb8 first in every round read 6.8 ms where
        # bgr8 read 3.0: it followed the last round's nv24 in the caches; a review), and the
        # paths' order flips.
        order = list(paths.items())[::(1 if k % 2 else -1)]
        shift = k % len(ENCODINGS)
        for encoding in ENCODINGS[shift:] + ENCODINGS[:shift]:
            frame = frames[encoding]
            for name, call in order:
                start = time.perf_counter()
                call(frame)
                times[encoding, name].append(time.perf_counter() - start)
    median = {key: 1e3 * statistics.median(v) for key, v in times.items()}
    # (rgb8 read 7.6 to 7.9 ms here where bgr8 read 2.8, each 2.4 to 2.6 alone, whatever the
    # order: the ratio is to the cheaper of the two)
    floor = min(median['rgb8', 'convert+prepare'], median['bgr8', 'convert+prepare'])
    print(f'{height}x{width} frame, 32x32 RGB model input, median of {args.rounds} calls (ms); '
          'convert+prepare also as a ratio to the cheaper of rgb8 and bgr8 (views of their '
          'bytes: no conversion)' + (f'; this code / {args.against}' if other is not None
                                     else ''))
    print(f'{"encoding":10}{"convert":>10}{"convert+prepare":>24}'
          + (f'{"at " + args.against:>14}{"ratio":>8}' if other is not None else ''))
    for e in ENCODINGS:
        line = (f'{e:10}{median[e, "convert"]:>10.1f}{median[e, "convert+prepare"]:>14.1f} '
                f'(x{median[e, "convert+prepare"] / floor:4.2f})')
        if other is not None:
            then = median[e, f'convert at {args.against}']
            line += f'{then:>14.1f}' + (f'{median[e, "convert"] / then:>8.2f}' if then > 0.05
                                        else f'{"-":>8}')
        print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
