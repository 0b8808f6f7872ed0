"""
Plots (PNG files) of timestep profiles, sensitivity analyses and pipeline runs.

The one module that draws: :func:`plot_profile` (``topspark sweep``), :func:`plot_sensitivity`
(``topspark enhance``), :func:`plot_run` (the demo's run). Matplotlib is imported inside each
function, with the ``Agg`` backend (no display), so importing this module costs nothing and
needs no matplotlib until something is drawn; the types drawn are named for the type checker
only, so the demo's recorder drawing a run does not import the enhancement (and numba).
"""

import math
import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from topspark_ros.core.topspark.enhance import Sensitivity
    from topspark_ros.core.topspark.profile import TimestepProfile
    from topspark_ros.core.topspark.scoreboard import Scoreboard


def _write_figure(fig, path: str, dpi: int) -> None:
    """
    Write ``fig`` as a PNG to ``path`` atomically, its folder made if missing; close it.

    A missing folder failed the command after its work (an enhancement's hour, a sweep's
    minutes; a user review), and a write cut short left a torn image where the old one was.
    """
    import io
    from pathlib import Path

    import matplotlib.pyplot as plt

    from topspark_ros.core.files import atomic_write, fsync_dir
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format='png', dpi=dpi)
    finally:
        plt.close(fig)
    target = Path(path)
    directory = target.parent if str(target.parent) else Path('.')
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory, f'.{target.name}.', buffer.getvalue(), target)
    fsync_dir(directory)


def plot_profile(profile: 'TimestepProfile', path: str) -> None:
    """Draw accuracy (with its interval), latency and energy against T into a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    t = np.array(profile.timesteps)
    entries = profile.entries
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    acc = np.array([e.accuracy for e in entries]) * 100
    low = np.array([e.accuracy_ci95[0] for e in entries]) * 100
    high = np.array([e.accuracy_ci95[1] for e in entries]) * 100
    axes[0].errorbar(t, acc, yerr=[acc - low, high - acc], marker='o', capsize=3,
                     label='inference')
    if all(e.early_exit_accuracy is not None for e in entries):
        axes[0].plot([e.early_exit_mean_timesteps for e in entries],
                     [e.early_exit_accuracy * 100 for e in entries], 's--',
                     label='early exit (x: mean steps used)')
    axes[0].set_ylabel('accuracy (%)')
    axes[0].legend(fontsize=8)
    axes[1].plot(t, [e.latency_ms for e in entries], 'o-', label='inference')
    if all(e.train_latency_ms is not None for e in entries):
        axes[1].plot(t, [e.train_latency_ms for e in entries], 's-', label='training step')
    axes[1].set_ylabel('latency per sample (ms)')
    axes[1].legend(fontsize=8)
    axes[2].plot(t, [e.energy_j * 1e6 for e in entries], 'o-', label='inference')
    if all(e.train_energy_j is not None for e in entries):
        axes[2].plot(t, [e.train_energy_j * 1e6 for e in entries], 's-', label='training step')
    axes[2].set_ylabel(f'energy per sample (uJ, {profile.energy_preset})')
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel('timesteps T')
        ax.set_xscale('log', base=2)
        ax.grid(alpha=0.3)
    if profile.agreement_based:
        axes[0].set_ylabel(f'agreement with T={profile.reference_timesteps} (%)')
    fig.suptitle(f'{os.path.basename(profile.model_path)} on {profile.dataset} '
                 f'{profile.split} ({profile.n_samples} samples'
                 + (', no labels)' if profile.agreement_based else ')'))
    fig.tight_layout()
    _write_figure(fig, path, 100)


def plot_sensitivity(sensitivity: 'Sensitivity', path: str, title: str = '') -> None:
    """
    Draw the sensitivity analysis into a PNG.

    One panel per knob: validation accuracy (solid, left axis) and energy relative to the own
    value's (dashed, right axis; per training sample for learning knobs) against the factor on
    the model's value (log axis), one colour per T, the own value (factor 1) marked; a last
    panel ranks the knobs by their mean spread (inference and learning knobs in two colours).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator

    knobs = sensitivity.knobs
    cols = 4
    rows = math.ceil((len(knobs) + 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    axes = axes.ravel()
    colours = plt.cm.viridis(np.linspace(0.0, 0.85, max(len(sensitivity.grid), 1)))
    for ax, knob in zip(axes, knobs):
        energy_ax = ax.twinx()
        top = 1.5
        for colour, timesteps in zip(colours, sensitivity.grid):
            curve = sensitivity.curve(knob.name, timesteps)
            x = [p.factor for p in curve]
            ax.plot(x, [p.score.accuracy * 100 for p in curve], 'o-', ms=3, color=colour,
                    label=f'T={timesteps}')
            own = next(p.score.energy_j for p in curve if p.factor == 1.0)
            ratios = [p.score.energy_j / max(own, 1e-30) for p in curve]
            energy_ax.plot(x, ratios, '--', lw=0.8, color=colour)
            top = max(top, 1.1 * max(ratios))
        energy_ax.set_ylim(0.0, top)
        energy_ax.set_ylabel('energy / own (dashed)', fontsize=7)
        energy_ax.tick_params(labelsize=7)
        ax.axvline(1.0, color='grey', lw=0.8, ls=':')
        ax.set_xscale('log')
        ax.xaxis.set_major_locator(FixedLocator(sorted(set(knob.factors) | {1.0})))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f'{f:g}' for f in sorted(set(knob.factors) | {1.0})])
        ax.set_title(f'{knob.name} ({knob.stage})', fontsize=9)
        ax.set_xlabel('factor on the model value' if knob.mode == 'ratio'
                      else 'factor on the gap to v_rest', fontsize=8)
        ax.set_ylabel('val. accuracy (%)', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    ranking = sensitivity.ranking()
    ax = axes[len(knobs)]
    ax.barh([r[0] for r in ranking][::-1], [r[2] * 100 for r in ranking][::-1],
            color=['tab:blue' if r[1] == 'inference' else 'tab:orange' for r in ranking][::-1])
    ax.set_xlabel('mean spread over T (accuracy points)', fontsize=8)
    ax.set_title('ranking (blue: inference, orange: learning)', fontsize=9)
    ax.tick_params(labelsize=7)
    for ax in axes[len(knobs) + 1:]:
        ax.axis('off')
    fig.suptitle(title or 'parameter sensitivity')
    fig.tight_layout()
    _write_figure(fig, path, 90)


def plot_run(board: 'Scoreboard', path: str, window: int = 20) -> None:
    """
    Draw T, running accuracy, energy per inference and battery against time into ``path``.

    The accuracy is the mean over the last ``window`` scored classifications.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    t = np.array([s.time_s for s in board.samples])
    fig, axes = plt.subplots(4, 1, sharex=True, figsize=(8, 9))
    axes[0].step(t, [s.given for s in board.samples], where='post', label='T')
    if any(s.timesteps < s.given for s in board.samples):  # early exit: the steps used too
        axes[0].plot(t, [s.timesteps for s in board.samples], '.', markersize=2,
                     label='steps used')
        axes[0].legend(loc='upper right')
    axes[0].set_ylabel('timesteps T')
    scored = [(s.time_s, float(s.correct)) for s in board.samples if s.correct is not None]
    if scored:
        st, sc = np.array(scored).T
        running = np.convolve(sc, np.ones(window), 'valid') / window if len(sc) >= window \
            else np.cumsum(sc) / np.arange(1, len(sc) + 1)
        axes[1].plot(st[len(st) - len(running):], running)
    axes[1].set_ylabel(f'accuracy\n(last {window})')
    axes[1].set_ylim(0, 1)
    axes[2].plot(t, [s.energy_j * 1e6 for s in board.samples], '.', markersize=3)
    axes[2].set_ylabel('energy per\ninference (uJ)')
    if board.battery:
        bt, bf = np.array(board.battery).T
        axes[3].plot(bt, bf * 100)
    axes[3].set_ylabel('battery (%)')
    axes[3].set_xlabel('time (s)')
    fig.tight_layout()
    _write_figure(fig, path, 100)
