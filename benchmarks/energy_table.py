#!/usr/bin/env python3
"""
Energy per inference of the shipped frame models, per preset, against the equivalent ANN.

For each model (``models/stdp_fmnist_n400.json``, ``models/converted_fmnist_vgg.json``) it
measures the operation counts per inference on the first ``--n-images`` Fashion-MNIST test
images at two operating points, the T that the model's timestep profile's strategy picks in
``balanced`` mode with the shipped controller settings (2 points of accuracy drop, no other
limit) and the profile's full T, with the profile's enhanced parameters for that T (as the
classifier applies them). For the STDP network it also measures one on-line learning step at
the balanced T (a copy learns ``--n-learn`` images). Every preset of
:data:`topspark_ros.core.energy.PRESETS` prices the counts, and the equivalent ANN's MACs
(``ann_ops()``), so the table shows with and without memory, and whether the SNN pays.

Prints the markdown tables and writes them into ``--docs`` (default ``docs/energy.md``)
between ``<!-- energy:begin -->`` and ``<!-- energy:end -->``, and everything as JSON to
``--json`` when given. Deterministic (seeded input spikes). Run::

    NUMBA_NUM_THREADS=1 dev/in_env.sh python benchmarks/energy_table.py
"""

import argparse
import copy
import json
import pathlib
import sys

import numpy as np

from topspark_ros.core.checkpoint import load_checkpoint
from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
from topspark_ros.core.energy import compare_with_ann, EnergyModel, format_joules, OpCounts
from topspark_ros.core.energy import PRESETS
from topspark_ros.core.topspark.profile import default_profile_path, load_profile
from topspark_ros.core.topspark.strategy import choose_timestep, Constraints, Mode

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ('models/stdp_fmnist_n400.json', 'models/converted_fmnist_vgg.json')
MARK_BEGIN, MARK_END = '<!-- energy:begin -->', '<!-- energy:end -->'


def mean_ops(result, n: int) -> OpCounts:
    """Return the mean over the ``n`` inputs of a model result's operation counts."""
    total = OpCounts()
    for i in range(n):
        total = total + result.energy_ops(i)
    return total * (1.0 / n)


def params_for(model, profile, timesteps: int):
    """Return the profile's enhanced parameters for ``timesteps`` (None: the model's own)."""
    values = profile.params_for(timesteps)
    return None if values is None else model.params_for_values(values)


def measure(path: str, images: np.ndarray, n_learn: int, seed: int) -> dict:
    """Return the operating points and mean operation counts of one model."""
    model, _ = load_checkpoint(str(ROOT / path))
    profile = load_profile(default_profile_path(ROOT / path))
    choice = choose_timestep(profile, Constraints(max_accuracy_drop=0.02), Mode.BALANCED)
    points = {'balanced': choice.timesteps, 'full': profile.baseline.timesteps}
    figures = {'model': path, 'points': points, 'ann_ops': model.ann_ops().as_dict(),
               'ops': {}, 'accuracy': {}}
    for name, timesteps in points.items():
        result = model.infer(images, timesteps=timesteps,
                             params=params_for(model, profile, timesteps), seed=seed)
        figures['ops'][name] = mean_ops(result, len(images)).as_dict()
        figures['accuracy'][name] = profile.entry(timesteps).accuracy
    if model.learns_online and n_learn > 0:
        learner = copy.deepcopy(model)
        timesteps = points['balanced']
        result = learner.learn(images[:n_learn], timesteps=timesteps,
                               params=params_for(learner, profile, timesteps), seed=seed)
        figures['ops']['learn_step'] = result.ops.mean_energy_ops().as_dict()
    return figures


def tables(measured: list) -> str:
    """Return the markdown, one table per model, of the measured figures."""
    out = []
    for m in measured:
        points = m['points']
        ann = OpCounts.from_mapping(m['ann_ops'])
        ops = {k: OpCounts.from_mapping(v) for k, v in m['ops'].items()}
        learning = 'learn_step' in ops
        out.append(f"### `{m['model']}`\n")
        out.append(f"Balanced T = {points['balanced']} (profile accuracy "
                   f"{m['accuracy']['balanced']:.4f}), full T = {points['full']} "
                   f"({m['accuracy']['full']:.4f}). Mean counts per inference at the balanced "
                   f"T: {_counts(ops['balanced'])}; at full T: {_counts(ops['full'])}; "
                   f'equivalent ANN: {ann.macs:,.0f} MACs.'
                   + (' One on-line learning step at the balanced T: '
                      f"{_counts(ops['learn_step'])}." if learning else '') + '\n')
        head = ['preset', 'includes', f"SNN T={points['balanced']}", f"SNN T={points['full']}",
                'ANN', f"SNN/ANN at T={points['balanced']}", f"SNN/ANN at T={points['full']}"]
        if learning:
            head.append(f"learning step T={points['balanced']}")
        out.append('| ' + ' | '.join(head) + ' |')
        out.append('|' + '---|' * len(head))
        for name in PRESETS:
            energy = EnergyModel(name)
            snn = [format_joules(energy.estimate(ops[k]).compute_j) for k in ('balanced', 'full')]
            if PRESETS[name].runs_anns:
                at_op = compare_with_ann(energy, ops['balanced'], ann)
                at_full = compare_with_ann(energy, ops['full'], ann)
                versus = [format_joules(at_op.ann_j), _ratio(at_op.ratio), _ratio(at_full.ratio)]
            else:  # a neuromorphic chip: no ANN runs there
                versus = ['- (no ANN runs on it)', '-', '-']
            row = [f'`{name}`', ', '.join(PRESETS[name].includes), *snn, *versus]
            if learning:
                row.append(format_joules(energy.estimate(ops['learn_step']).compute_j))
            out.append('| ' + ' | '.join(row) + ' |')
        out.append('')
    return '\n'.join(out)


def _counts(ops: OpCounts) -> str:
    parts = [f'{ops.accumulates:,.0f} accumulates', f'{ops.macs:,.0f} MACs',
             f'{ops.neuron_updates:,.0f} neuron updates']
    if ops.plasticity_updates:
        parts.append(f'{ops.plasticity_updates:,.0f} plasticity updates')
    return ', '.join(parts)


def _ratio(value: float) -> str:
    return f'**{value:.2f}x**' if value >= 1.0 else f'{value:.2f}x'


def write_docs(path: pathlib.Path, text: str) -> bool:
    """Replace the text between the markers of ``path``; False when it has none."""
    if not path.exists():
        return False
    doc = path.read_text()
    if MARK_BEGIN not in doc or MARK_END not in doc:
        return False
    head, rest = doc.split(MARK_BEGIN, 1)
    _, tail = rest.split(MARK_END, 1)
    path.write_text(f'{head}{MARK_BEGIN}\n{text}\n{MARK_END}{tail}')
    return True


def main(argv=None) -> int:
    """Measure, print and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--n-images', type=int, default=500,
                        help='test images measured per operating point (default 500)')
    parser.add_argument('--n-learn', type=int, default=50,
                        help='images of the STDP learning-step measurement (default 50)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--docs', default=str(ROOT / 'docs' / 'energy.md'))
    parser.add_argument('--json', default='', help='also write the figures here')
    args = parser.parse_args(argv)
    images = load_mnist_family(find_dataset_dir(), 'test').images[:args.n_images]
    measured = [measure(path, images, args.n_learn, args.seed) for path in MODELS]
    text = (f'Measured on the first {len(images)} Fashion-MNIST test images '
            f'(`benchmarks/energy_table.py --n-images {args.n_images} --n-learn {args.n_learn} '
            f'--seed {args.seed}`). SNN/ANN above 1 (bold): the SNN spends more than the '
            'ANN of the same network under that preset.\n\n' + tables(measured))
    print(text)
    if write_docs(pathlib.Path(args.docs), text):
        print(f'wrote {args.docs}', file=sys.stderr)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'n_images': len(images), 'models': measured}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
