r"""
The STDP model family: Diehl & Cook's (2015) unsupervised network, learning on line.

Diehl & Cook (2015) spiking network with online STDP: configuration, parameters, model.

Architecture (as BindsNET's ``DiehlAndCook2015``): ``n_inputs`` Poisson inputs (one per
pixel, see :mod:`topspark_ros.core.stdp.encoding`) fully connected by plastic weights
``W [n_inputs, N]`` in ``[0, w_max]`` to ``N`` excitatory LIF neurons with adaptive thresholds,
and lateral inhibition in one of two forms (``STDPConfig.inhibition``):

* ``'populations'`` (the original, and BindsNET's ``DiehlAndCook2015``): excitatory neuron
  ``j`` drives inhibitory neuron ``j`` with ``w_exc_inh_mv`` (22.5 mV, one to one); each
  inhibitory spike lowers every *other* excitatory neuron by ``w_inh_mv`` (120 mV).
* ``'direct'`` (BindsNET's ``DiehlAndCook2015v2`` form): each excitatory spike lowers every
  other excitatory neuron by ``w_inh_mv`` directly; no inhibitory layer (cheaper, one step
  less delay).

Every synapse except input -> excitatory delivers one step after the spike. Per step ``t``
of ``dt = dt_ms`` (``S_t``: the inputs spiking at ``t``; ``s^e_j(t)``, ``s^i_j(t)`` in {0, 1}):

.. code-block:: text

    I_j(t)   = sum_{i in S_t} W_ij - w_inh * sum_{k != j} s_k(t - 1)
               (s = s^i for 'populations', s^e for 'direct')
    inhibitory ('populations'): u_j <- u_rest + (u_j - u_rest) e^{-dt/10 ms}
               + w_exc_inh s^e_j(t - 1); spike at u_j >= -40 mV, reset -45 mV, 2 ms refractory
    v_j      <- v_rest + (v_j - v_rest) e^{-dt/tau_v} + I_j(t)     (not while refractory)
    theta_j  <- theta_j e^{-dt/tau_theta}                           (learning only)
    crossing : v_j >= v_thresh + s theta_j                          (not while refractory)
    one_spike: of several crossings only the largest v_j - v_thresh - s theta_j (lowest
               index on ties) fires; the others keep their potential (BindsNET keeps one at
               random)
    spike    : v_j <- v_reset; refractory for round(refractory_ms / dt) steps (no input, no
               spike); theta_j += theta_plus (learning only)

``s = theta_scale`` (1 by default) scales the learnt adaptive thresholds where they are compared,
never where they are stored: the kernels see ``s theta`` and an increment ``s theta_plus``, and
the stored ``theta`` is divided back by ``s`` after a learning call (TopSpark's enhancement
lowers it at small T, where the thresholds learnt at a large T are out of reach).

A refractory neuron still leaks. STDP (learning only) uses nearest-spike traces set to 1 on a
spike and decaying as ``x(t) = exp(-(t - t_last) dt / tau)``: the pre trace ``x_i`` (tau_pre
20 ms), post traces ``y1_j`` (20 ms) and ``y2_j`` (40 ms). After this step's spikes have set
the traces:

.. code-block:: text

    pre spike  i at t:  W_ij <- max(0, W_ij - nu_pre * y1_j)                  for all j
    post spike j at t:  W_ij <- clip(W_ij + nu_post * (x_i - x_tar) * F_j, 0, w_max)  for all i
    'dc'   (Diehl & Cook triplet rule): F_j = y2_j just before this spike (0 for a first spike)
    'pair' (BindsNET PostPre):           F_j = 1

Depression is applied before potentiation. After every learning sample each weight column is
normalised to sum ``norm`` (78.4) within ``[0, w_max]`` (:func:`.normalise.normalise_columns`; the
numba engine recomputes only the columns STDP wrote, with the same result bit for bit, see
:func:`.normalise.normalise_changed_columns`).
Between learning samples the state is either reset to rest (``between_samples='reset'``, the
default and what BindsNET does) or relaxed for ``rest_ms`` of input-free dynamics
(``'rest'``, Diehl & Cook's 150 ms). Inference never learns (weights and theta frozen) and
starts every sample from rest, so batched samples are independent.

Modules: :mod:`.config` (structure and dynamics parameters), :mod:`.network` (the model),
:mod:`.results` (what its calls return), :mod:`.engine` (the numba engine and its call
constants), :mod:`.kernels` (the numba dynamics), :mod:`.rng` (random numbers and Poisson spike
trains), :mod:`.normalise` (weight-column normalisation), :mod:`.torch_engine` (the dense torch
engine), :mod:`.encoding` (rate coding), :mod:`.readout` (label assignment, votes), :mod:`.knobs`
(the enhancement knobs), :mod:`.train` (learn, label, evaluate).
The public names are re-exported here.
"""

from topspark_ros.core.stdp.config import DynamicsParams, STDPConfig  # noqa: F401
from topspark_ros.core.stdp.engine import simulation_constants  # noqa: F401
from topspark_ros.core.stdp.network import DiehlCookNetwork, initial_weights  # noqa: F401
from topspark_ros.core.stdp.results import EngineCounts, LearnResult  # noqa: F401
