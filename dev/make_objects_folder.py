"""
Make a small "own objects" image folder to try the README's walkthrough without a camera.

Takes ``--per-class`` Fashion-MNIST training images of each class in ``--classes`` and writes
them as camera-like photos: RGB JPEGs of ``--size`` pixels (the 28 x 28 image scaled up,
placed off-centre on a dark, noisy background with its own brightness), one subfolder per
class, the layout ``topspark --data folder:DIR`` reads and ``topspark record --out DIR
--label NAME`` writes. Deterministic for a ``--seed``. On a robot, record your own instead.

    dev/in_env.sh python dev/make_objects_folder.py --out objects
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from topspark_ros.core.data.idx import (FASHION_MNIST_CLASSES, find_dataset_dir,
                                        load_mnist_family)


def main() -> None:
    """Write the folder."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, help='folder to create (must not exist)')
    parser.add_argument('--classes', default='Trouser,Sneaker,Bag',
                        help='Fashion-MNIST class names, comma-separated')
    parser.add_argument('--per-class', type=int, default=300)
    parser.add_argument('--size', type=int, default=96, help='photo side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        parser.error(f'{out} exists: choose a new folder')
    rng = np.random.default_rng(args.seed)
    train = load_mnist_family(find_dataset_dir('fashion-mnist'), 'train')
    for name in args.classes.split(','):
        if name not in FASHION_MNIST_CLASSES:
            parser.error(f'{name!r} is not a Fashion-MNIST class: {FASHION_MNIST_CLASSES}')
        label = FASHION_MNIST_CLASSES.index(name)
        picked = np.flatnonzero(train.labels == label)[:args.per_class]
        folder = out / name.replace('/', '-').replace(' ', '_').lower()
        folder.mkdir(parents=True)
        for i in picked:
            side = int(args.size * rng.uniform(0.6, 0.8))
            item = Image.fromarray(train.images[i]).resize((side, side), Image.BILINEAR)
            gain = rng.uniform(0.7, 1.0)
            photo = rng.normal(20, 8, (args.size, args.size)).clip(0, 255)
            top, left = rng.integers(0, args.size - side + 1, 2)
            patch = photo[top:top + side, left:left + side]
            photo[top:top + side, left:left + side] = np.maximum(
                patch, np.asarray(item, np.float64) * gain)
            tint = rng.uniform(0.85, 1.0, 3)
            rgb = (photo[:, :, None] * tint).clip(0, 255).astype(np.uint8)
            Image.fromarray(rgb, 'RGB').save(folder / f'{int(i):05d}.jpg', quality=90)
        print(f'{folder}: {len(picked)} photos')


if __name__ == '__main__':
    main()
