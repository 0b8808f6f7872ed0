"""
What the Diehl & Cook network's calls return: per-sample operation counts, learning results.

Inference returns the one result type of every family,
:class:`~topspark_ros.core.model.InferenceResult`, with :class:`EngineCounts` as its ``ops``.
"""

from dataclasses import dataclass

import numpy as np

from topspark_ros.core.energy import OpCounts


def _count(index: int, doc: str) -> property:
    """Return a read-only attribute of :class:`EngineCounts`: row ``index`` of its counts."""
    return property(lambda self: self._rows[index], doc=doc)


class EngineCounts:
    """
    Operation and spike counts per sample (``int64 [B]`` each), for the energy model.

    Built from the kernels' count matrix (:meth:`from_matrix`), which it keeps as one
    ``int64 [N_OPS, B]`` array; each attribute is a view of a row of it. (Seven arrays in a
    frozen dataclass cost 2 us a call, a tenth of a one-frame inference.)

    Attributes
    ----------
    input_spikes
        input spikes.
    exc_spikes
        excitatory spikes.
    inh_spikes
        inhibitory spikes ('populations').
    syn_ops_input
        synaptic accumulates of input spikes (``input_spikes * N``).
    syn_ops_inhibition
        synaptic accumulates of lateral inhibition (exc -> inh one per
        excitatory spike plus ``N - 1`` per inhibitory spike; 'direct': ``N - 1`` per
        excitatory spike).
    neuron_updates
        neuron state updates (``N`` per step and layer).
    plasticity_updates
        weight updates STDP applies: per input spike, one per excitatory
        neuron with a non-zero post trace ``y1`` (depression; the others would change by 0);
        per excitatory spike, the column of ``n_inputs`` weights (potentiation; none for a
        first spike under 'dc', whose factor ``y2`` is 0). 0 in inference.

    """

    FIELDS = ('input_spikes', 'exc_spikes', 'inh_spikes', 'syn_ops_input',
              'syn_ops_inhibition', 'neuron_updates', 'plasticity_updates')
    """The attributes, in the order of the kernels' ``OP_*`` columns."""

    __slots__ = ('_rows',)

    input_spikes = _count(0, 'input spikes')
    exc_spikes = _count(1, 'excitatory spikes')
    inh_spikes = _count(2, 'inhibitory spikes')
    syn_ops_input = _count(3, 'synaptic accumulates of input spikes')
    syn_ops_inhibition = _count(4, 'synaptic accumulates of lateral inhibition')
    neuron_updates = _count(5, 'neuron state updates')
    plasticity_updates = _count(6, 'weight updates of STDP')

    def __init__(self, rows: np.ndarray) -> None:
        """Keep ``rows``, ``int64 [N_OPS, B]`` (use :meth:`from_matrix`)."""
        self._rows = rows

    @classmethod
    def from_matrix(cls, ops: np.ndarray) -> 'EngineCounts':
        """
        Build from the kernels' ``int64 [B, N_OPS]`` matrix (copied).

        Its columns are the ``OP_*`` indices of :mod:`.kernels`, in the order of
        :attr:`FIELDS`.
        """
        ops = np.asarray(ops)
        if ops.ndim != 2 or ops.shape[1] != len(cls.FIELDS):
            raise ValueError(f'operation counts must be [B, {len(cls.FIELDS)}], got shape '
                             f'{ops.shape}')
        return cls(np.array(ops.T, dtype=np.int64, order='C'))

    @classmethod
    def of_one_sample(cls, ops: np.ndarray) -> 'EngineCounts':
        """
        Build from the kernels' ``int64 [1, N_OPS]`` matrix of one sample, which it keeps.

        :meth:`from_matrix` without its checks and copy (0.6 us, 5 % of a one-frame call at
        ``T`` = 1): for one sample the matrix and its transpose have the same memory layout.
        The caller gives up ``ops`` and vouches for its type (C-contiguous ``int64``).
        """
        counts = object.__new__(cls)  # __init__'s call costs 0.15 us of the 0.4
        counts._rows = ops.reshape(len(cls.FIELDS), 1)  # a [1, k] array of another k: raises
        return counts

    def __repr__(self) -> str:
        """Return the counts summed over the samples."""
        return f'EngineCounts(samples={self._rows.shape[1]}, totals={self.totals()})'

    @property
    def spikes(self) -> np.ndarray:
        """``int64 [B]``: spikes of the network's neurons (excitatory and inhibitory)."""
        return self.exc_spikes + self.inh_spikes

    def energy_ops(self, index: int) -> OpCounts:
        """
        Return sample ``index``'s counts as the energy model's operation kinds.

        Accumulates are the input and inhibition synaptic operations; there are no MACs
        (the input is spikes); neuron and plasticity updates map one to one.
        """
        return OpCounts(accumulates=float(self.syn_ops_input[index]
                                          + self.syn_ops_inhibition[index]),
                        neuron_updates=float(self.neuron_updates[index]),
                        plasticity_updates=float(self.plasticity_updates[index]))

    def mean_energy_ops(self) -> OpCounts:
        """Return the mean over samples of :meth:`energy_ops`."""
        n = len(self.input_spikes)
        total = OpCounts()
        for i in range(n):
            total = total + self.energy_ops(i)
        return total * (1.0 / max(n, 1))

    def totals(self) -> dict:
        """Return the sums over samples as a dict of ints."""
        return {name: int(row.sum()) for name, row in zip(self.FIELDS, self._rows)}


@dataclass(frozen=True)
class LearnResult:
    """
    What a learning call did.

    Attributes
    ----------
    exc_spike_counts
        ``int64 [B, N]`` excitatory spikes per sample during its ``T`` steps.
    ops
        per-sample operation counts (rest periods included).
    timesteps
        ``T`` of the call.

    """

    exc_spike_counts: np.ndarray
    ops: EngineCounts
    timesteps: int
