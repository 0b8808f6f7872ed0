"""
Reading speed of the data sources (image folder, ROS 2 bags) against what the models consume.

Writes Fashion-MNIST test images into a temporary image folder (PNG) and into rosbag2 bags
(sqlite3 and MCAP; ``sensor_msgs/Image`` mono8 and ``sensor_msgs/CompressedImage`` PNG), plus
camera-sized frames (the images scaled up to 640 x 480 RGB: rgb8 and JPEG in an MCAP bag,
JPEG in a folder), then times reading them into 28 x 28 grey model inputs with the package's
own readers (:func:`~topspark_ros.core.data.folder.load_image_folder`,
:func:`~topspark_ros.core.data.bag.load_bag`: decode + the classifier's preprocessing), best
of ``--repeats``. It also times what consumes those inputs, on the same machine and thread
count: online STDP training (N=100, T=64), STDP inference as in a sweep (the shipped N=400
model, T=64, batch 256), the converted family's ANN training (one epoch, batch 128) and SNN
inference as in a sweep (the shipped model, T=4 and T=64, batch 256). Prints one table of
images per second and, per reader, how many times faster it is than the fastest consumer
(> 1: reading is not the bottleneck even if it ran alongside; every command reads its data
once, before the first epoch or the first T). ``--json`` prints the figures as well.

    dev/in_env.sh python benchmarks/bench_data_read.py
    dev/in_env.sh python benchmarks/bench_data_read.py --n-images 200 --n-camera 20  # smoke
"""

import argparse
import io
import json
import os
from pathlib import Path
import sys
import tempfile
import time

import numpy as np
from PIL import Image
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores
from topspark_ros.core.checkpoint import load_checkpoint
from topspark_ros.core.converted import ConvertedConfig, ConvertedNetwork
from topspark_ros.core.converted.train import train_ann
from topspark_ros.core.data.bag import BagOptions, load_bag
from topspark_ros.core.data.cache import CACHE_ENV
from topspark_ros.core.data.folder import load_image_folder
from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
from topspark_ros.core.data.sources import load_split, parse_data
from topspark_ros.core.preprocess import FrameSpec
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
from topspark_ros.core.threads import DEFAULT_TORCH_THREADS, set_torch_threads
from topspark_ros.core.topspark.sweep import machine_description

ROOT = Path(__file__).resolve().parents[1]
STORE = get_typestore(Stores.ROS2_JAZZY)
CAMERA = (480, 640)
SPEC = FrameSpec(28, 28, 1)


def _png(image: np.ndarray, fmt: str = 'PNG') -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **({'quality': 90} if fmt == 'JPEG' else {}))
    return buffer.getvalue()


def _camera_frame(image: np.ndarray) -> np.ndarray:
    """Return a 28 x 28 image scaled up to a 640 x 480 RGB frame (the object in the middle)."""
    side = CAMERA[0]
    big = np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR))
    frame = np.zeros(CAMERA + (3,), np.uint8)
    left = (CAMERA[1] - side) // 2
    frame[:, left:left + side] = np.stack([big, big // 2, 255 - big], axis=-1)
    return frame


def _message(frame: np.ndarray, kind: str, stamp_ns: int):
    time_msg = STORE.types['builtin_interfaces/msg/Time'](
        sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    header = STORE.types['std_msgs/msg/Header'](stamp=time_msg, frame_id='camera')
    if kind in ('mono8', 'rgb8'):
        channels = 1 if kind == 'mono8' else 3
        return 'sensor_msgs/msg/Image', STORE.types['sensor_msgs/msg/Image'](
            header=header, height=frame.shape[0], width=frame.shape[1], encoding=kind,
            is_bigendian=0, step=frame.shape[1] * channels, data=frame.reshape(-1))
    data = np.frombuffer(_png(frame, kind), np.uint8)
    return 'sensor_msgs/msg/CompressedImage', STORE.types['sensor_msgs/msg/CompressedImage'](
        header=header, format=kind.lower(), data=data)


def write_bag(path: Path, storage: str, frames, kind: str) -> Path:
    """Write ``frames`` to ``/camera`` of a new bag as ``kind`` (mono8, rgb8, PNG, JPEG)."""
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connection = None
        for i, frame in enumerate(frames):
            stamp = 1_700_000_000 * 10**9 + i * 33_000_000
            msgtype, msg = _message(frame, kind, stamp)
            if connection is None:
                connection = writer.add_connection('/camera', msgtype, typestore=STORE)
            writer.write(connection, stamp, STORE.serialize_cdr(msg, msgtype))
    return path


def write_folder(root: Path, frames, labels, fmt: str = 'PNG') -> Path:
    for i, (frame, label) in enumerate(zip(frames, labels)):
        folder = root / f'class{int(label)}'
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f'{i:05d}.{fmt.lower()}').write_bytes(_png(frame, fmt))
    return root


def _best_rate(read, n: int, repeats: int) -> float:
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        got = read()
        best = min(best, time.perf_counter() - start)
        assert len(got) == n, (len(got), n)
    return n / best


def reading(images, labels, n_camera: int, repeats: int, tmp: Path) -> list:
    """Return ``[(name, images/s)]`` of every reader."""
    everything = {'test_fraction': 0.0, 'val_fraction': 0.0, 'spec': SPEC}
    rows = []
    folder = write_folder(tmp / 'folder', images, labels)
    rows.append(('folder, PNG 28x28', _best_rate(
        lambda: load_image_folder(folder, 'train', **everything), len(images), repeats)))
    for storage in ('sqlite3', 'mcap'):
        for kind in ('mono8', 'PNG'):
            bag = write_bag(tmp / f'{storage}_{kind}', storage, images, kind)
            rows.append((f'bag {storage}, {"Image mono8" if kind == "mono8" else "PNG"} '
                         '28x28', _best_rate(lambda: load_bag(bag, 'train', **everything),
                                             len(images), repeats)))
    camera = [_camera_frame(image) for image in images[:n_camera]]
    folder = write_folder(tmp / 'camera_folder', camera, labels[:n_camera], 'JPEG')
    rows.append(('folder, JPEG 640x480 RGB', _best_rate(
        lambda: load_image_folder(folder, 'train', **everything), n_camera, repeats)))
    for kind in ('rgb8', 'JPEG'):
        bag = write_bag(tmp / f'camera_{kind}', 'mcap', camera, kind)
        label = 'Image rgb8' if kind == 'rgb8' else 'JPEG'
        rows.append((f'bag mcap, {label} 640x480', _best_rate(
            lambda: load_bag(bag, 'train', options=BagOptions(), **everything), n_camera,
            repeats)))
    # What every read after the first costs: the model inputs come from the cache.
    os.environ[CACHE_ENV] = str(tmp / 'cache')
    for spec, name in ((f'folder:{folder}', 'folder, JPEG 640x480, cached'),
                       (f'bag:{bag}', 'bag mcap, JPEG 640x480, cached')):
        source = parse_data(spec)
        load_split(source, 'train', **everything)  # the first read fills the cache
        rows.append((name, _best_rate(lambda: load_split(source, 'train', **everything),
                                      n_camera, repeats)))
    return rows


def _infer(model, images: np.ndarray, timesteps: int) -> np.ndarray:
    """Infer ``images`` in batches of 256 as a sweep does; return the output spike counts."""
    return np.concatenate([model.infer(images[a:a + 256], timesteps=timesteps, seed=1)
                           .evidence for a in range(0, len(images), 256)])


def consuming(images, labels, n_stdp: int, repeats: int) -> list:
    """Return ``[(name, images/s)]`` of training and sweeping both families."""
    rows = []
    config = STDPConfig(n_inputs=784, n_neurons=100, n_classes=10, seed=0)
    network = DiehlCookNetwork(config)
    network.learn(images[:10], timesteps=64)  # warm-up (numba compilation)
    start = time.perf_counter()
    for first in range(0, n_stdp, 50):
        network.learn(images[first:min(first + 50, n_stdp)], timesteps=64)
    rows.append(('STDP N=100 T=64, train (online)', n_stdp / (time.perf_counter() - start)))
    n_infer = min(len(images), 512)
    stdp, _ = load_checkpoint(ROOT / 'models' / 'stdp_fmnist_n400.json')
    rows.append(('STDP N=400 T=64, sweep (batch 256)',
                 _best_rate(lambda: _infer(stdp, images[:n_infer], 64), n_infer, 1)))
    ann = ConvertedNetwork(ConvertedConfig(arch='vgg', height=28, width=28, channels=1,
                                           n_classes=10, widths=(16, 32, 64), hidden=64))
    n_ann = min(len(images), 2048)
    start = time.perf_counter()
    train_ann(ann, images[:n_ann], labels[:n_ann], epochs=1, batch_size=128, seed=0)
    rows.append(('converted VGG, train ANN (1 epoch)', n_ann / (time.perf_counter() - start)))
    converted, _ = load_checkpoint(ROOT / 'models' / 'converted_fmnist_vgg.json')
    for timesteps in (4, 64):
        rows.append((f'converted VGG T={timesteps}, sweep (batch 256)', _best_rate(
            lambda: _infer(converted, images[:n_infer], timesteps), n_infer, repeats)))
    return rows


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--n-images', type=int, default=2000,
                        help='28 x 28 images read per source (default: %(default)s)')
    parser.add_argument('--n-camera', type=int, default=200,
                        help='640 x 480 frames read per source (default: %(default)s)')
    parser.add_argument('--n-stdp', type=int, default=200,
                        help='images STDP training is timed on (default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=DEFAULT_TORCH_THREADS)
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()
    set_torch_threads(args.threads)
    test = load_mnist_family(find_dataset_dir('fashion-mnist', start=ROOT), 'test')
    images, labels = test.images[:args.n_images], test.labels[:args.n_images]
    with tempfile.TemporaryDirectory() as tmp:
        read = reading(images, labels, args.n_camera, args.repeats, Path(tmp))
    consume = consuming(images, labels, args.n_stdp, args.repeats)
    fastest = max(rate for _, rate in consume)
    print(f'{machine_description()}, torch threads {args.threads}')
    print(f'{"reading (-> 28x28 grey model input)":44s} {"img/s":>9s} {"x fastest":>10s}')
    for name, rate in read:
        print(f'{name:44s} {rate:9.0f} {rate / fastest:10.2f}')
    print(f'{"consuming (same machine, same threads)":44s} {"img/s":>9s}')
    for name, rate in consume:
        print(f'{name:44s} {rate:9.0f}')
    slowest = min(read, key=lambda r: r[1])
    print(f'slowest reader: {slowest[0]} at {slowest[1]:.0f} img/s; fastest consumer '
          f'{fastest:.0f} img/s; reading is {"never" if slowest[1] > fastest else "sometimes"} '
          'the bottleneck of a first read')
    again = min((r for r in read if r[0].endswith('cached')), key=lambda r: r[1])
    print(f'every later read (cache): slowest {again[0]} at {again[1]:.0f} img/s, '
          f'{"never" if again[1] > fastest else "sometimes"} the bottleneck')
    if args.json:
        print(json.dumps({'machine': machine_description(), 'threads': args.threads,
                          'reading': dict(read), 'consuming': dict(consume),
                          'command': ' '.join(sys.argv)}))


if __name__ == '__main__':
    main()
