"""
Speed and memory of the STDP engine beside BindsNET 0.3.x ``DiehlAndCook2015``, in one run.

Both implementations run the same Diehl & Cook (2015) network (784 Poisson inputs at 128 Hz
max, ``N`` excitatory + ``N`` inhibitory neurons, exc 22.5, inh 120, pair STDP nu = (1e-4,
1e-2), theta_plus 0.05, norm 78.4, one spike per step, state reset between samples) for ``T``
steps of dt = 1 ms on the same real Fashion-MNIST test images, on the CPU with 2 threads.
BindsNET is set up as its ``examples/mnist/eth_mnist.py`` (no plotting, no GPU, no voltage
monitors; one spike monitor on ``Ae``, the output both implementations return).

* ``train``: per-sample online STDP at batch 1 (BindsNET: ``network.run`` then
  ``reset_state_variables`` per sample; ours: one ``learn()`` call per sample).
* ``infer``: learning off. BindsNET (``network.train(False)``) at its fastest batch size, found
  by a probe before the measurement (batch 1, 16, 32, ... doubling to 1024 at least, and on
  while larger batches keep paying); ours batched ``infer()``.

Every (implementation, mode, config) runs in a FRESH child process, so its peak RSS
(``ru_maxrss``) is its own; the children alternate (BindsNET, ours, BindsNET, ours, ... with
the order flipped every repetition) so that load from other jobs hits both alike. A child
warms up (3 samples in train, one batch in infer; numba compilation excluded), then times
every sample (train) or batch (infer) and reports the median ms per sample. The summary gives
per config the median over repetitions and the median of the per-repetition ratios
BindsNET / ours. BindsNET's Poisson encoding is timed separately: its figures come "incl."
and "excl. encoding"; our engine draws its input spikes inside the kernel, so ours always
include encoding.

Setup and run (BindsNET lives in a benchmark-only venv, never a project dependency)::

    venv=$(benchmarks/peers/setup_bindsnet.sh)
    PYTHONPATH=$PWD "$venv/bin/python" benchmarks/bench_stdp_vs_bindsnet.py --json out.json
    ... --quick          # smoke run with tiny sample counts (not a measurement)
"""

import argparse
import importlib.abc
import importlib.machinery
from importlib.metadata import PackageNotFoundError, version
import json
import math
import os
from pathlib import Path
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
import types

REPO_ROOT = Path(__file__).resolve().parents[1]
IMPLEMENTATIONS = ('bindsnet', 'topspark')
MODES = ('train', 'infer')
CONFIGS = ((400, 350), (100, 350), (400, 100), (100, 100))
"""``(N, T)`` pairs; the first is the goal's."""
GOAL_CONFIG = (400, 350)
GOAL_RATIO = {'train': 50.0, 'infer': 20.0}
"""Speed-up over BindsNET the issue asks for at ``GOAL_CONFIG``."""
DT_MS = 1.0
INPUT_RATE_HZ = 128.0
"""Rate of a pixel of intensity 255 (BindsNET: image in [0, 1] x ``intensity`` 128)."""
BINDSNET_BATCHES = (1, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
"""Ladder of BindsNET inference batch sizes the probe climbs (see :func:`_probe_bindsnet`)."""
PROBE_GAIN = 0.02
"""A larger batch counts as an improvement when at least this much faster per sample."""
PROBE_PATIENCE = 2
"""Past :data:`PROBE_MIN_TOP`, the probe stops after this many sizes in a row without gain."""
PROBE_MIN_TOP = 1024
"""The probe always climbs to this size (one noisy timing must not end the search early)."""
QUIET_BUSY = 0.10
"""Above this fraction of CPUs busy before or after the run, the report carries a warning."""
OURS_INFER_BATCH = 512
INFER_OFFSET = 5000
"""First test image of the timed inference batches (warm-up and training use the first ones)."""
ACTIVITY_SAMPLES = 256
"""Per-sample spike counts kept in a child's record (to compare both on the same images)."""


# --- the torchvision stand-in (BindsNET imports torchvision, which does not work here) ---

class _DummyMeta(type):
    """Metaclass of the stand-in's dummies: any attribute is another dummy class."""

    def __getattr__(cls, name):
        """Return a dummy class for any non-dunder attribute."""
        if name.startswith('__'):
            raise AttributeError(name)
        return _dummy(f'{cls.__qualname__}.{name}')


def _dummy(name: str) -> type:
    """Return a dummy class: callable with any arguments, subclassable, any attribute."""
    return _DummyMeta(name, (), {'__init__': lambda self, *args, **kwargs: None})


class _StubModule(types.ModuleType):
    """A stand-in module whose every (non-dunder) attribute is a dummy class."""

    def __getattr__(self, name):
        """Create, remember and return a dummy for ``name``."""
        if name.startswith('__'):
            raise AttributeError(name)
        value = _dummy(f'{self.__name__}.{name}')
        setattr(self, name, value)
        return value


class _TorchvisionStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Meta-path finder serving ``torchvision`` and every ``torchvision.*`` as stubs."""

    def find_spec(self, fullname, path=None, target=None):
        """Claim ``torchvision`` and its submodules; leave everything else alone."""
        if fullname == 'torchvision' or fullname.startswith('torchvision.'):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        """Return an empty stub module."""
        return _StubModule(spec.name)

    def exec_module(self, module):
        """Nothing to run: attributes appear on demand."""


def install_torchvision_stub() -> None:
    """
    Make ``import torchvision`` (and submodules) yield stubs; call before importing bindsnet.

    BindsNET uses torchvision only in its data set helpers and plotting, which the benchmark
    does not touch; a real torchvision, if any, is shadowed.
    """
    if any(isinstance(finder, _TorchvisionStub) for finder in sys.meta_path):
        return
    for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
        del sys.modules[name]
    sys.meta_path.insert(0, _TorchvisionStub())


# --- child side: one implementation, one mode, one config ---

def _rss_now_mib() -> float:
    """Return the current resident set size of this process (MiB)."""
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def _peak_rss_mib() -> float:
    """Return the peak resident set size of this process (``ru_maxrss``, KiB on Linux; MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load_images():
    """Return the Fashion-MNIST test images, ``uint8 [10000, 28, 28]``."""
    from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
    return load_mnist_family(find_dataset_dir('fashion-mnist'), 'test').images


def _chunks(images, spec: dict):
    """
    Yield the image chunks of a child, warm-up first.

    train: one image per call, the test images in order. infer: batches; the warm-up ones
    from image 0, the timed ones from ``INFER_OFFSET`` on (cycling), so both implementations
    time the same images whatever their batch sizes.
    """
    import numpy as np
    if spec['mode'] == 'train':
        for i in range(spec['warmup'] + spec['count']):
            yield images[i:i + 1]
        return
    batch = spec['batch']
    for k in range(spec['warmup']):
        yield images[(k * batch + np.arange(batch)) % images.shape[0]]
    for k in range(spec['count']):
        yield images[(INFER_OFFSET + k * batch + np.arange(batch)) % images.shape[0]]


def _run_bindsnet(spec: dict) -> dict:
    """Time BindsNET's ``DiehlAndCook2015`` as eth_mnist.py sets it up; return the results."""
    install_torchvision_stub()
    import numpy as np
    import torch
    torch.set_num_threads(spec['threads'])
    start = time.perf_counter()  # bindsnet's own imports (torch's excluded)
    from bindsnet.encoding import PoissonEncoder
    from bindsnet.models import DiehlAndCook2015
    from bindsnet.network.monitors import Monitor
    import_s = time.perf_counter() - start
    torch.manual_seed(spec['seed'])
    images = _load_images()
    rss_ready = _rss_now_mib()
    n, steps = spec['neurons'], spec['timesteps']
    network = DiehlAndCook2015(n_inpt=784, n_neurons=n, exc=22.5, inh=120.0, dt=DT_MS,
                               norm=78.4, theta_plus=0.05, inpt_shape=(1, 28, 28))
    monitor = Monitor(network.layers['Ae'], state_vars=['s'], time=steps)
    network.add_monitor(monitor, name='Ae_spikes')
    encoder = PoissonEncoder(time=steps, dt=DT_MS)
    network.train(spec['mode'] == 'train')

    def run(batch_images):
        """Encode and simulate a batch; return ``(encode_s, sim_s, in_spikes[B], exc[B])``."""
        t0 = time.perf_counter()
        pixels = torch.from_numpy(batch_images.astype(np.float32))
        rates = pixels.view(-1, 1, 28, 28) * (INPUT_RATE_HZ / 255.0)  # eth_mnist's transform
        spikes = encoder(rates)  # [T, B, 1, 28, 28], a fresh tensor (reset zeroes inputs)
        t1 = time.perf_counter()
        network.run(inputs={'X': spikes}, time=steps)
        exc = monitor.get('s').sum(0)  # [B, N] spike counts: the output
        network.reset_state_variables()
        t2 = time.perf_counter()
        return (t1 - t0, t2 - t1, spikes.flatten(2).sum(2).sum(0).tolist(),
                exc.sum(1).tolist())

    timed, cpu = _timed_calls(run, _chunks(images, spec), spec['warmup'])
    return _summarise(spec, timed, cpu, rss_ready, import_s,
                      {'torch': torch.__version__, 'bindsnet': _version('bindsnet')})


def _run_topspark(spec: dict) -> dict:
    """Time topspark_ros's ``DiehlCookNetwork`` (numba engine); return the results."""
    start = time.perf_counter()
    import numba
    from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, STDPConfig
    import_s = time.perf_counter() - start
    numba.set_num_threads(spec['threads'])
    images = _load_images()
    rss_ready = _rss_now_mib()
    config = STDPConfig(n_neurons=spec['neurons'], dt_ms=DT_MS, inhibition='populations',
                        learning_rule=spec['learning_rule'], one_spike=True,
                        between_samples='reset', norm=78.4, w_init_max=0.3, seed=spec['seed'])
    params = DynamicsParams(input_rate_hz=INPUT_RATE_HZ, theta_plus_mv=0.05, w_inh_mv=120.0,
                            w_exc_inh_mv=22.5, nu_pre=1e-4, nu_post=1e-2)
    model = DiehlCookNetwork(config, params)
    steps = spec['timesteps']

    def run(batch_images):
        """Run one call; return ``(0, seconds, in_spikes[B], exc[B])`` (encoding inside)."""
        t0 = time.perf_counter()
        if spec['mode'] == 'train':
            result = model.learn(batch_images, timesteps=steps)
            counts = result.exc_spike_counts
        else:
            result = model.infer(batch_images, timesteps=steps)
            counts = result.evidence
        elapsed = time.perf_counter() - t0
        return (0.0, elapsed, result.ops.input_spikes.tolist(), counts.sum(1).tolist())

    timed, cpu = _timed_calls(run, _chunks(images, spec), spec['warmup'])
    return _summarise(spec, timed, cpu, rss_ready, import_s, {'numba': numba.__version__})


def _timed_calls(run, chunks, warmup: int):
    """
    Call ``run`` on every chunk; return the results of the timed calls and their CPU use.

    The CPU use is ``(process CPU seconds, wall seconds)`` summed over the timed calls: a
    ratio far below the thread count means the process waited for a core (other jobs).
    """
    timed = []
    cpu_s = wall_s = 0.0
    for k, chunk in enumerate(chunks):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = run(chunk)
        if k >= warmup:
            cpu_s += time.process_time() - cpu0
            wall_s += time.perf_counter() - wall0
            timed.append(result)
    return timed, (cpu_s, wall_s)


def _summarise(spec, timed, cpu, rss_ready, import_s, versions) -> dict:
    """Turn per-call ``(encode_s, sim_s, in[B], exc[B])`` tuples into the child's record."""
    batch = spec['batch']
    samples = batch * len(timed)
    inputs = [int(x) for t in timed for x in t[2]]
    exc = [int(x) for t in timed for x in t[3]]
    total = [(e + s) * 1e3 / batch for e, s, _, _ in timed]
    sim = [s * 1e3 / batch for _, s, _, _ in timed]
    enc = [e * 1e3 / batch for e, _, _, _ in timed]
    return dict(spec, samples=samples,
                ms_per_sample=statistics.median(total),
                ms_per_sample_excl_encoding=statistics.median(sim),
                ms_encoding_per_sample=statistics.median(enc),
                ms_per_sample_mean=statistics.fmean(total),
                input_spikes_per_sample=sum(inputs) / samples,
                exc_spikes_per_sample=sum(exc) / samples,
                input_spikes=inputs[:ACTIVITY_SAMPLES], exc_spikes=exc[:ACTIVITY_SAMPLES],
                peak_rss_mib=_peak_rss_mib(), rss_after_imports_mib=rss_ready,
                cpu_per_wall=cpu[0] / cpu[1] if cpu[1] else float('nan'),
                import_s=import_s, versions=versions)


def _probe_bindsnet(spec: dict) -> dict:
    """Time BindsNET inference once per batch size of ``spec['batches']``; return ms/sample."""
    results = {}
    child = dict(spec, mode='infer', warmup=1, count=1)
    for batch in spec['batches']:
        record = _run_bindsnet(dict(child, batch=batch))
        results[str(batch)] = {
            'ms_per_sample': record['ms_per_sample'],
            'ms_per_sample_excl_encoding': record['ms_per_sample_excl_encoding']}
    return results


def _search_bindsnet_batch(spec: dict, batches) -> dict:
    """
    Find BindsNET's fastest inference batch size; return ms/sample per size tried (best of 2).

    Climbs the ladder ``batches`` (ascending) up to :data:`PROBE_MIN_TOP` at least, and on
    while larger batches keep paying: it stops after :data:`PROBE_PATIENCE` sizes in a row
    that are not at least :data:`PROBE_GAIN` faster per sample (excluding encoding) than the
    best so far. Then every size tried is timed once more, in the opposite order, and the
    better of the two kept. Each timing is a fresh child process (a warm-up batch, then one
    timed batch).
    """
    found = {}
    best, misses = math.inf, 0
    for batch in sorted(batches):
        got = _child(dict(spec, impl='bindsnet-probe', batches=[batch]))['probe'][str(batch)]
        found[str(batch)] = got
        ms = got['ms_per_sample_excl_encoding']
        print(f'  probe batch {batch}: {ms:.2f} ms/sample excl. encoding', file=sys.stderr,
              flush=True)
        misses = 0 if ms < best * (1.0 - PROBE_GAIN) else misses + 1
        best = min(best, ms)
        if misses >= PROBE_PATIENCE and batch >= PROBE_MIN_TOP:
            break
    for batch in sorted(found, key=int, reverse=True):
        again = _child(dict(spec, impl='bindsnet-probe', batches=[int(batch)]))['probe'][batch]
        found[batch] = {key: min(found[batch][key], again[key]) for key in again}
    return found


def _child_main(spec: dict) -> None:
    """Run one child measurement and print its JSON record as the last stdout line."""
    if spec['impl'] == 'bindsnet-probe':
        record = {'probe': _probe_bindsnet(spec)}
    elif spec['impl'] == 'bindsnet':
        record = _run_bindsnet(spec)
    else:
        record = _run_topspark(spec)
    print(json.dumps(record))


# --- parent side: plan, alternate children, summarise ---

def _version(name: str) -> str:
    """Return the installed version of distribution ``name`` (or ``'absent'``)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return 'absent'


def _busy_fraction(seconds: float = 2.0) -> float:
    """Return the fraction of all CPUs busy over ``seconds`` (from ``/proc/stat``)."""
    def sample():
        with open('/proc/stat') as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values[:8]), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return float('nan')
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def _machine() -> dict:
    """Describe the machine and software (CPU model, cores, versions, date, commit)."""
    from topspark_ros.core.topspark.sweep import cpu_model
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ''
    return {'cpu': cpu_model(), 'logical_cpus': os.cpu_count(),
            'python': platform.python_version(),
            'torch': _version('torch'), 'numba': _version('numba'),
            'bindsnet': _version('bindsnet'), 'numpy': _version('numpy'),
            'date': time.strftime('%Y-%m-%d %H:%M %Z'), 'commit': commit or 'unknown',
            'load_average_start': os.getloadavg(), 'busy_before': _busy_fraction()}


def _counts(mode: str, impl: str, timesteps: int, batch: int, quick: bool) -> dict:
    """
    Return warm-up and timed counts (samples in train, batches in infer) of one child.

    Sized for a full run of about 10 minutes: BindsNET trains at a few hundred ms per sample
    at N=400, T=350 here; counts grow as ``350 / T``. Ours gets more samples than BindsNET
    (its calls are short, so timer and scheduler noise weigh more); BindsNET's are a prefix.
    """
    scale = 350.0 / timesteps
    if mode == 'train':
        if quick:
            return {'warmup': 1, 'count': 2 if impl == 'bindsnet' else 10}
        return {'warmup': 3, 'count': round((20 if impl == 'bindsnet' else 200) * scale)}
    if quick:
        return {'warmup': 1, 'count': 1}
    if impl == 'bindsnet':
        return {'warmup': 1, 'count': max(3, math.ceil(96 * scale / batch))}
    return {'warmup': 1, 'count': max(3, round(3 * scale))}


def _child(spec: dict) -> dict:
    """Run ``spec`` in a fresh interpreter (this one's) and return its JSON record."""
    env = dict(os.environ, MPLBACKEND='Agg', OMP_NUM_THREADS=str(spec['threads']),
               MKL_NUM_THREADS=str(spec['threads']))
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), '--child',
                           json.dumps(spec)], capture_output=True, text=True, env=env,
                          timeout=900)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f'child failed ({proc.returncode}): {spec}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ratio(a: float, b: float) -> float:
    """Return ``a / b`` (``nan`` if ``b`` is 0)."""
    return a / b if b else float('nan')


def _activity(pairs: list) -> dict:
    """Mean spikes per sample of both over the samples both ran (the same images)."""
    common = min(min(len(b['input_spikes']), len(o['input_spikes'])) for b, o in pairs)
    out = {'activity_samples': common}
    for who, index in (('bindsnet', 0), ('ours', 1)):
        for key in ('input_spikes', 'exc_spikes'):
            out[f'{who}_{key}'] = statistics.median(
                statistics.fmean(p[index][key][:common]) for p in pairs)
    return out


def _summary(runs: list, configs) -> list:
    """Per (mode, config): medians over repetitions and the median of paired ratios."""
    rows = []
    for mode in MODES:
        for n, steps in configs:
            pick = [r for r in runs if r['mode'] == mode and r['neurons'] == n
                    and r['timesteps'] == steps]
            reps = sorted({r['rep'] for r in pick})
            pairs = []
            for rep in reps:
                bn = [r for r in pick if r['rep'] == rep and r['impl'] == 'bindsnet']
                ours = [r for r in pick if r['rep'] == rep and r['impl'] == 'topspark']
                if bn and ours:
                    pairs.append((bn[0], ours[0]))
            if not pairs:
                continue

            def med(impl_index, key, pairs=pairs):
                return statistics.median(p[impl_index][key] for p in pairs)

            row = {'mode': mode, 'neurons': n, 'timesteps': steps, 'reps': len(pairs),
                   'bindsnet_batch': pairs[0][0]['batch'], 'ours_batch': pairs[0][1]['batch'],
                   'bindsnet_ms': med(0, 'ms_per_sample'),
                   'bindsnet_ms_excl_encoding': med(0, 'ms_per_sample_excl_encoding'),
                   'bindsnet_ms_encoding': med(0, 'ms_encoding_per_sample'),
                   'ours_ms': med(1, 'ms_per_sample'),
                   'ratio': statistics.median(_ratio(b['ms_per_sample'], o['ms_per_sample'])
                                              for b, o in pairs),
                   'ratio_excl_encoding': statistics.median(
                       _ratio(b['ms_per_sample_excl_encoding'], o['ms_per_sample'])
                       for b, o in pairs),
                   'bindsnet_peak_rss_mib': med(0, 'peak_rss_mib'),
                   'ours_peak_rss_mib': med(1, 'peak_rss_mib'),
                   'bindsnet_rss_after_imports_mib': med(0, 'rss_after_imports_mib'),
                   'ours_rss_after_imports_mib': med(1, 'rss_after_imports_mib'),
                   **_activity(pairs)}
            if (n, steps) == GOAL_CONFIG:
                target = GOAL_RATIO[mode]
                if row['ratio_excl_encoding'] >= target:
                    row['goal'] = f'>= {target:g}x: met (also excl. BindsNET encoding)'
                elif row['ratio'] >= target:
                    row['goal'] = f'>= {target:g}x: met incl. encoding only'
                else:
                    row['goal'] = f'>= {target:g}x: NOT met'
            rows.append(row)
    return rows


def _markdown(machine: dict, command: str, args, rows: list, probe: dict) -> str:
    """Render the results as Markdown (machine, command, tables)."""
    out = ['## topspark_ros STDP engine vs BindsNET DiehlAndCook2015', '']
    if args.quick:
        out += ['**QUICK smoke run: tiny sample counts, not a measurement.**', '']
    busy = max(machine['busy_before'], machine['busy_after'])
    if not busy < QUIET_BUSY:
        out += [f'**Warning: the machine was {busy:.0%} busy without this benchmark (other '
                'jobs). Multi-threaded torch stalls at every barrier when a core is taken, '
                "which inflates BindsNET's times far more than ours: do not quote these "
                'ratios.**', '']
    out += [f"- machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, "
            f"threads: BindsNET (torch) {machine['threads']['bindsnet']}, ours (numba) "
            f"{machine['threads']['topspark']}; load average at start "
            f"{', '.join(f'{x:.2f}' for x in machine['load_average_start'])}, at end "
            f"{', '.join(f'{x:.2f}' for x in machine['load_average_end'])}; CPUs busy "
            f"without the benchmark: {machine['busy_before']:.0%} before, "
            f"{machine['busy_after']:.0%} after",
            f"- software: Python {machine['python']}, torch {machine['torch']}, "
            f"numba {machine['numba']}, numpy {machine['numpy']}, "
            f"bindsnet {machine['bindsnet']}; topspark_ros commit {machine['commit']}",
            f"- date: {machine['date']}; wall time {machine['wall_s']:.0f} s",
            f'- command: `{command}`',
            f'- {args.reps} repetitions; fresh process per (implementation, mode, config), '
            'implementations alternated (order flipped every repetition); per child the '
            'median ms per sample after warm-up; tables give the median over repetitions and '
            'the median of the per-repetition ratios BindsNET / ours.',
            f'- same network and inputs: Fashion-MNIST test images, Poisson at '
            f'{INPUT_RATE_HZ:g} Hz max, dt = {DT_MS:g} ms, learning rule {args.learning_rule!r} '
            '(BindsNET: PostPre); ours always includes encoding (spikes drawn in the kernel).',
            '']
    for mode, title in (('train', 'Training: per-sample online STDP, batch 1'),
                        ('infer', 'Inference: learning off, batched')):
        out += [f'### {title}', '',
                '| N | T | batch BN / ours | BindsNET ms/sample incl. enc. | excl. enc. '
                '| ours ms/sample | speed-up incl. | speed-up excl. | peak RSS BN MiB '
                '| peak RSS ours MiB | goal |',
                '|---|---|---|---|---|---|---|---|---|---|---|']
        for r in (r for r in rows if r['mode'] == mode):
            out.append(
                f"| {r['neurons']} | {r['timesteps']} | {r['bindsnet_batch']} / "
                f"{r['ours_batch']} | {r['bindsnet_ms']:.2f} | "
                f"{r['bindsnet_ms_excl_encoding']:.2f} | {r['ours_ms']:.3f} | "
                f"{r['ratio']:.1f}x | {r['ratio_excl_encoding']:.1f}x | "
                f"{r['bindsnet_peak_rss_mib']:.0f} | {r['ours_peak_rss_mib']:.0f} | "
                f"{r.get('goal', '')} |")
        out.append('')
    out += ['### Same work? Spikes per sample on the same images, and RSS before the model',
            '',
            '| mode | N | T | samples | input spikes BN / ours | exc. spikes BN / ours '
            '| RSS after imports + data BN / ours MiB |',
            '|---|---|---|---|---|---|---|']
    for r in rows:
        out.append(f"| {r['mode']} | {r['neurons']} | {r['timesteps']} | "
                   f"{r['activity_samples']} | "
                   f"{r['bindsnet_input_spikes']:.0f} / {r['ours_input_spikes']:.0f} | "
                   f"{r['bindsnet_exc_spikes']:.1f} / {r['ours_exc_spikes']:.1f} | "
                   f"{r['bindsnet_rss_after_imports_mib']:.0f} / "
                   f"{r['ours_rss_after_imports_mib']:.0f} |")
    if probe:
        sizes = sorted({int(b) for p in probe.values() for b in p['batches']})
        out += ['', '### BindsNET inference batch-size probe (ms/sample excl. encoding, '
                'best of 2)', '',
                '| N | T | ' + ' | '.join(f'batch {b}' for b in sizes) + ' | chosen |',
                '|---|---|' + '---|' * (len(sizes) + 1)]
        for key, p in probe.items():
            cells = [f"{p['batches'][str(b)]['ms_per_sample_excl_encoding']:.2f}"
                     if str(b) in p['batches'] else '' for b in sizes]
            n, steps = key.split('x')
            out.append(f'| {n} | {steps} | ' + ' | '.join(cells) + f" | {p['chosen']} |")
    return '\n'.join(out) + '\n'


def _parse_configs(text: str):
    """Parse ``'400x350,100x100'`` into ``((400, 350), (100, 100))``."""
    configs = []
    for item in text.split(','):
        n, steps = item.lower().split('x')
        configs.append((int(n), int(steps)))
    return tuple(configs)


def main() -> None:
    """Parse arguments; run a child measurement or the whole alternating benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--reps', type=int, default=None,
                        help='repetitions (default 3, 1 with --quick)')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run with tiny sample counts (not a measurement)')
    parser.add_argument('--json', type=Path, default=None, help='write all results here')
    parser.add_argument('--configs', default=','.join(f'{n}x{t}' for n, t in CONFIGS),
                        help='comma-separated NxT (default: %(default)s)')
    parser.add_argument('--modes', default=','.join(MODES), help='default: %(default)s')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--bindsnet-threads', type=int, default=None,
                        help='torch threads of BindsNET if not --threads (a check: under load '
                        'from other jobs, 2-thread torch stalls at its many barriers)')
    parser.add_argument('--bindsnet-batches', default=','.join(map(str, BINDSNET_BATCHES)),
                        help='BindsNET inference batch sizes to probe (default: %(default)s)')
    parser.add_argument('--bindsnet-infer-batch', type=int, default=None,
                        help='skip the probe and use this BindsNET inference batch size')
    parser.add_argument('--ours-infer-batch', type=int, default=OURS_INFER_BATCH)
    parser.add_argument('--learning-rule', default='pair', choices=('pair', 'dc'),
                        help="ours: 'pair' = BindsNET's PostPre (default), 'dc' = triplet")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--child', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child_main(json.loads(args.child))
        return
    reps = args.reps if args.reps is not None else (1 if args.quick else 3)
    args.reps = reps
    configs = _parse_configs(args.configs)
    modes = [m for m in args.modes.split(',') if m]
    if not set(modes) <= set(MODES):
        parser.error(f'--modes must be among {MODES}')
    if _version('bindsnet') == 'absent':
        parser.error('bindsnet is not installed in this interpreter: run it with the venv '
                     'of benchmarks/peers/setup_bindsnet.sh')
    command = shlex.join([sys.executable, *sys.argv])
    machine = _machine()
    started = time.perf_counter()
    base = {'threads': args.threads, 'seed': args.seed, 'learning_rule': args.learning_rule}
    bindsnet_threads = args.bindsnet_threads or args.threads
    machine['threads'] = {'bindsnet': bindsnet_threads, 'topspark': args.threads}

    probe = {}
    bindsnet_batch = {}
    if 'infer' in modes:
        batches = [int(b) for b in args.bindsnet_batches.split(',')]
        if args.quick:
            batches = [b for b in batches if b <= 16][:2] or batches[:1]
        for n, steps in configs:
            if args.bindsnet_infer_batch is not None:
                bindsnet_batch[(n, steps)] = args.bindsnet_infer_batch
                continue
            found = _search_bindsnet_batch(
                dict(base, neurons=n, timesteps=steps, threads=bindsnet_threads), batches)
            chosen = min(found, key=lambda b: found[b]['ms_per_sample_excl_encoding'])
            bindsnet_batch[(n, steps)] = int(chosen)
            probe[f'{n}x{steps}'] = {'batches': found, 'chosen': int(chosen)}
            print(f'probe N={n} T={steps}: BindsNET inference batch {chosen} '
                  f'({found[chosen]["ms_per_sample_excl_encoding"]:.2f} ms/sample excl. '
                  'encoding)', file=sys.stderr, flush=True)

    runs = []
    for rep in range(reps):
        order = IMPLEMENTATIONS if rep % 2 == 0 else IMPLEMENTATIONS[::-1]
        for n, steps in configs:
            for mode in modes:
                for impl in order:
                    batch = 1
                    if mode == 'infer':
                        batch = (bindsnet_batch[(n, steps)] if impl == 'bindsnet'
                                 else (64 if args.quick else args.ours_infer_batch))
                    spec = dict(base, impl=impl, mode=mode, neurons=n, timesteps=steps,
                                batch=batch, **_counts(mode, impl, steps, batch, args.quick))
                    if impl == 'bindsnet':
                        spec['threads'] = bindsnet_threads
                    record = _child(spec)
                    record['rep'] = rep
                    runs.append(record)
                    print(f'rep {rep} {impl:8s} {mode:5s} N={n} T={steps}: '
                          f"{record['ms_per_sample']:.3f} ms/sample "
                          f"(excl. enc. {record['ms_per_sample_excl_encoding']:.3f}), "
                          f"peak RSS {record['peak_rss_mib']:.0f} MiB, "
                          f"CPU/wall {record['cpu_per_wall']:.2f}",
                          file=sys.stderr, flush=True)

    machine['load_average_end'] = os.getloadavg()
    machine['busy_after'] = _busy_fraction()
    machine['wall_s'] = time.perf_counter() - started
    rows = _summary(runs, configs)
    print(_markdown(machine, command, args, rows, probe))
    if args.json is not None:
        payload = {'machine': machine, 'command': command, 'quick': args.quick,
                   'reps': reps, 'summary': rows, 'probe': probe, 'runs': runs}
        args.json.write_text(json.dumps(payload, indent=1, default=str) + '\n')
        print(f'wrote {args.json}', file=sys.stderr)
    if any(math.isnan(r['ratio']) for r in rows):
        sys.exit('some ratios are undefined (a time of 0)')


if __name__ == '__main__':
    main()
