"""
Per-input early exit: stop an input before its T steps once its class is decided.

Every output spike adds evidence to the class of its neuron (for the STDP network: the
neuron's assigned class, weighted by ``mean class size / size of its class`` so the evidence
ranks classes as the mean-rate vote does; for converted networks: the output neuron's
class). After step ``t`` (``t + 1 >= min_steps``, the safety floor) the input stops as soon as

.. code-block:: text

    evidence[best] - evidence[second best] >= margin   (and evidence[best] > 0)

so an input never runs more than T steps and never stops before ``min_steps``.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EarlyExit:
    """
    The early-exit rule.

    Attributes
    ----------
    margin
        lead of the best class over the second, in (weighted) output spikes; > 0.
    min_steps
        never stop before this many steps; >= 1.

    """

    margin: float = 3.0
    min_steps: int = 8

    def __post_init__(self) -> None:
        if not self.margin > 0:
            raise ValueError(f'early-exit margin must be > 0, got {self.margin}')
        if int(self.min_steps) < 1:
            raise ValueError(f'early-exit min_steps must be >= 1, got {self.min_steps}')


def default_min_steps(model) -> int:
    """
    Return the early-exit floor for ``model`` when none is given: 8, 1 for a converted model.

    A converted model runs T = 1 to 8: a floor of 8 never let it exit (a review).
    """
    return 1 if getattr(model, 'checkpoint_family', None) == 'converted' else 8


def class_votes(assignments: np.ndarray, n_classes: int) -> tuple:
    """
    Return ``(exit_class int64 [N], exit_weight float64 [N])`` for neuron ``assignments``.

    Neurons assigned -1 (never fired while labelling) carry no evidence. The weight of a
    neuron of class ``c`` is ``mean_c' n_c' / n_c`` over the classes that have neurons.
    """
    exit_class = np.asarray(assignments, np.int64).copy()
    exit_class[(exit_class < 0) | (exit_class >= n_classes)] = -1
    sizes = np.bincount(exit_class[exit_class >= 0], minlength=n_classes).astype(np.float64)
    present = sizes > 0
    mean_size = sizes[present].mean() if present.any() else 1.0
    weight = np.zeros(len(exit_class), np.float64)
    known = exit_class >= 0
    weight[known] = mean_size / sizes[exit_class[known]]
    return exit_class, weight
