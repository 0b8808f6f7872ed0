"""
What the Diehl & Cook network's calls return: per-sample operation counts, learning results.

Inference returns the one result type of every family,
:class:`~topspark_ros.core.model.InferenceResult`, with :class:`EngineCounts` as its ``ops``.
"""

from dataclasses import dataclass, fields

import numpy as np

from topspark_ros.core.energy import OpCounts


@dataclass(frozen=True)
class EngineCounts:
    """
    Operation and spike counts per sample (``int64 [B]`` each), for the energy model.

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

    input_spikes: np.ndarray
    exc_spikes: np.ndarray
    inh_spikes: np.ndarray
    syn_ops_input: np.ndarray
    syn_ops_inhibition: np.ndarray
    neuron_updates: np.ndarray
    plasticity_updates: np.ndarray

    @classmethod
    def from_matrix(cls, ops: np.ndarray) -> 'EngineCounts':
        """
        Build from the kernels' ``int64 [B, N_OPS]`` matrix.

        Its columns are the ``OP_*`` indices of :mod:`.kernels`, in the order of the fields.
        """
        return cls(*np.array(np.asarray(ops).T, dtype=np.int64, order='C'))

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
        return {f.name: int(getattr(self, f.name).sum()) for f in fields(self)}


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
