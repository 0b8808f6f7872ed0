"""
Exact step-by-step traces of the neuron, threshold and STDP dynamics against hand values.

The kernel :func:`kernels.simulate` is stepped one step per call on tiny networks, and every
value is compared with the equations of :mod:`topspark_ros.core.stdp` evaluated by hand. These
cases have at most one input spike per step, so the kernel's float32 input current is exact
and the traces must match to float64 rounding. The last test bounds the float32 rounding on a
realistic input instead.
"""

import math

import numpy as np
import pytest

from topspark_ros.core.stdp import DynamicsParams, initial_weights, simulation_constants
from topspark_ros.core.stdp import kernels
from topspark_ros.core.stdp import STDPConfig
from topspark_ros.core.stdp.encoding import poisson_events


class Stepper:
    """One sample of a tiny network, advanced one step at a time."""

    def __init__(self, weights, config, params=DynamicsParams(), learning=False):
        self.w = np.array(weights, np.float32)
        n_in, n = self.w.shape
        self.theta = np.zeros(n)
        self.state = kernels.empty_state(n_in, n)
        self.const = simulation_constants(config, params)
        kernels.reset_state(self.state, self.const.par)
        self.learning = learning
        self.counts = np.zeros(n, np.int64)
        self.ops = np.zeros(kernels.N_OPS, np.int64)

    @property
    def v(self):
        return self.state.v

    def step(self, inputs=()):
        """Run one step with the given input indices spiking; return the spiking neurons."""
        before = self.counts.copy()
        pixels = np.array(inputs, np.int32)
        row_ptr = np.array([0, len(pixels)], np.int64)
        kernels.simulate(self.w, self.theta, self.state, pixels, row_ptr, self.learning,
                         self.const, kernels.NO_EXIT, self.counts, self.ops)
        return list(np.nonzero(self.counts - before)[0])


def test_reset_puts_the_engine_state_at_rest():
    config = STDPConfig(n_inputs=3, n_neurons=2)
    const = simulation_constants(config, DynamicsParams(v_rest_mv=-70.0))
    state = kernels.empty_state(3, 2)
    assert isinstance(state, kernels.EngineState)
    assert state._fields == ('v', 'v_inh', 'refr', 'refr_inh', 'last_pre', 'last_post',
                             'prev_exc', 'prev_inh')
    for array in state:
        array[:] = 5
    kernels.reset_state(state, const.par)
    assert state.v.tolist() == [-70.0, -70.0] and state.v_inh.tolist() == [-60.0, -60.0]
    assert state.refr.tolist() == state.refr_inh.tolist() == [0, 0]
    assert state.last_pre.tolist() == [kernels.NEVER] * 3
    assert state.last_post.tolist() == [kernels.NEVER] * 2
    assert state.prev_exc.tolist() == state.prev_inh.tolist() == [0, 0]
    assert [a.dtype for a in state] == [np.float64] * 2 + [np.int64] * 6


def test_membrane_spike_refractory_and_theta():
    # Learning on (for theta) with learning rates 0 and room under w_max: the weight stays 4.
    config = STDPConfig(n_inputs=1, n_neurons=1, inhibition='direct', w_max=10.0)
    params = DynamicsParams(theta_plus_mv=0.5, tau_theta_ms=1000.0, nu_pre=0.0, nu_post=0.0)
    net = Stepper([[4.0]], config, params, learning=True)
    decay = math.exp(-1 / 100)
    theta_decay = math.exp(-1 / 1000)
    v, theta, fired_at = -65.0, 0.0, []
    for t in range(12):
        spikes = net.step([0])
        theta *= theta_decay
        if fired_at and t - fired_at[-1] <= 5:
            v = -65.0 + (v + 65.0) * decay          # refractory: leak only
        else:
            v = -65.0 + (v + 65.0) * decay + 4.0
            if v >= -52.0 + theta:
                fired_at.append(t)
                v = -60.0
                theta += 0.5
        assert net.v[0] == pytest.approx(v, abs=1e-12), t
        assert net.theta[0] == pytest.approx(theta, abs=1e-15), t
        assert spikes == ([0] if fired_at and fired_at[-1] == t else [])
    # By hand: -61.0, -57.04, -53.12 (no spike), then -49.2 >= -52 at step 3. Steps 4..8 are
    # refractory (5 ms); from step 9 input counts again and -51.3 passes -52 + theta (~0.4995)
    # at step 11.
    assert fired_at == [3, 11]
    assert net.theta[0] == pytest.approx(0.5 * theta_decay ** 8 + 0.5)


def test_no_learning_freezes_theta_and_weights():
    config = STDPConfig(n_inputs=1, n_neurons=1, inhibition='direct')
    net = Stepper([[20.0]], config, learning=False)
    assert net.step([0]) == [0]
    assert net.theta[0] == 0.0 and net.w[0, 0] == np.float32(20.0)


def test_direct_inhibition_and_one_spike():
    config = STDPConfig(n_inputs=2, n_neurons=3, inhibition='direct')
    params = DynamicsParams(w_inh_mv=7.0)
    # Input 0 pushes neurons 0 and 1 over threshold (1 by more); input 1 drives neuron 2 a bit.
    net = Stepper([[14.0, 15.0, 0.0], [0.0, 0.0, 1.0]], config, params)
    assert net.step([0]) == [1]                 # one spike: the largest overshoot wins
    assert net.v[0] == pytest.approx(-51.0)     # the loser keeps its potential
    net.step([1])
    decay = math.exp(-1 / 100)
    assert net.v[0] == pytest.approx(-65 + 14 * decay - 7.0)        # inhibited by neuron 1
    assert net.v[2] == pytest.approx(-65 + 0 * decay + 1.0 - 7.0)
    assert net.v[1] == pytest.approx(-65 + 5 * decay)                # refractory: no input


def test_population_inhibition_delay():
    config = STDPConfig(n_inputs=1, n_neurons=2, inhibition='populations')
    net = Stepper([[20.0, 0.0]], config)
    assert net.step([0]) == [0]                 # t=0: excitatory spike
    net.step()                                  # t=1: inhibitory neuron 0 fires (-60 + 22.5)
    assert net.state.v_inh[0] == -45.0 and net.ops[kernels.OP_INH_SPIKES] == 1
    decay = math.exp(-1 / 100)
    assert net.v[1] == -65.0
    net.step()                                  # t=2: excitatory neuron 1 gets -120 mV
    assert net.v[1] == pytest.approx(-65.0 - 120.0)
    assert net.v[0] == pytest.approx(-65 + 5 * decay ** 2)   # refractory, not inhibited


def _stdp_run(rule, schedule, steps):
    """Run a 2-input, 1-neuron net; input 0 drives spikes, input 1 is the probe."""
    config = STDPConfig(n_inputs=2, n_neurons=1, inhibition='direct', learning_rule=rule,
                        w_max=50.0)
    net = Stepper([[30.0], [0.25]], config, DynamicsParams(refractory_ms=0.0), learning=True)
    fired = []
    for t in range(steps):
        if net.step(schedule.get(t, ())):
            fired.append(t)
    return net, fired


@pytest.mark.parametrize('gap', [1, 7, 30])
def test_pair_rule_potentiation_and_depression(gap):
    # Potentiation: probe at 0, post spike (driven by input 0) at `gap`.
    net, fired = _stdp_run('pair', {0: [1], gap: [0]}, gap + 1)
    assert fired == [gap]
    expected = np.float32(0.25 + 1e-2 * math.exp(-gap / 20))
    assert net.w[1, 0] == expected
    # Depression: post spike at 0, probe at `gap`.
    net, fired = _stdp_run('pair', {0: [0], gap: [1]}, gap + 1)
    assert fired == [0]
    assert net.w[1, 0] == np.float32(0.25 - 1e-4 * math.exp(-gap / 20))


def test_triplet_rule_needs_a_previous_post_spike():
    # Probe at 0; post spikes at 2 and 6. The first gets F = y2 = 0 (no earlier post spike);
    # the second F = exp(-4 / 40) with the probe's trace exp(-6 / 20). The probe itself at 0
    # sees no post trace, so no depression.
    net, fired = _stdp_run('dc', {0: [1], 2: [0], 6: [0]}, 7)
    assert fired == [2, 6]
    expected = np.float32(np.float32(0.25) + 1e-2 * math.exp(-6 / 20) * math.exp(-4 / 40))
    assert net.w[1, 0] == expected


def test_op_counts_of_a_step():
    config = STDPConfig(n_inputs=3, n_neurons=4, inhibition='direct')
    net = Stepper(np.full((3, 4), 0.5), config, learning=True)
    net.step([0, 2])
    ops = net.ops
    assert ops[kernels.OP_INPUT_SPIKES] == 2 and ops[kernels.OP_SYN_INPUT] == 8
    # No post trace yet: depression changes nothing, so no weight update is counted.
    assert ops[kernels.OP_NEURON_UPDATES] == 4 and ops[kernels.OP_PLASTICITY] == 0
    assert ops[kernels.OP_EXC_SPIKES] == 0


@pytest.mark.parametrize('rule, expected', [('pair', [0, 0, 3, 3, 4]), ('dc', [0, 0, 1, 1, 2])])
def test_plasticity_counts_the_weight_updates_stdp_applies(rule, expected):
    # 2 inputs, 1 neuron. Probe (input 1) at 0: no post trace, nothing changes, 0 counted.
    # Post spike at 2 (driven by input 0): depression of w[0, 0] (1) and, under 'pair', the
    # column of 2 input weights (2); under 'dc' a first spike has factor y2 = 0: no column.
    # Probe at 4: depression of w[1, 0] (1).
    schedule = {0: [1], 2: [0], 4: [1]}
    config = STDPConfig(n_inputs=2, n_neurons=1, inhibition='direct', learning_rule=rule,
                        w_max=50.0)
    net = Stepper([[30.0], [0.25]], config, DynamicsParams(refractory_ms=0.0), learning=True)
    seen = []
    for t in range(5):
        net.step(schedule.get(t, ()))
        seen.append(int(net.ops[kernels.OP_PLASTICITY]))
    assert seen == expected


def test_float32_input_current_keeps_the_membrane_within_1e4_mv(fashion_train):
    # A bright real image, Poisson coded over 350 steps (about 40 input spikes per step), into
    # 100 neurons with normalised random weights and a threshold out of reach: without spikes
    # the membrane is a linear filter of the current, so it can be compared step by step with
    # the float64 definition (a float64 sum of float32 weights is exact here). The kernel adds
    # the current in float32: about 1e-7 relative error per step, which the membrane (decay
    # 0.99 per step) accumulates. Measured: at most about 2e-6 mV.
    config = STDPConfig(n_neurons=100, inhibition='direct')
    images = fashion_train.images[:50]
    image = images[np.argmax(images.reshape(50, -1).sum(axis=1))][None]
    events = poisson_events(image, 350, 128.0, 1.0, np.array([11], np.uint64))
    spikes = events.to_dense()[:, 0]
    assert spikes.sum(axis=1).mean() > 30
    weights = initial_weights(config)
    net = Stepper(weights, config, DynamicsParams(v_thresh_mv=1e9))
    w64 = weights.astype(np.float64)
    decay = math.exp(-1 / 100)
    v = np.full(100, -65.0)
    worst = 0.0
    for t in range(350):
        inputs = np.nonzero(spikes[t])[0]
        assert net.step(inputs) == []
        v = -65.0 + (v + 65.0) * decay + w64[inputs].sum(axis=0)
        worst = max(worst, float(np.abs(net.v - v).max()))
    assert worst <= 1e-4, worst


@pytest.mark.parametrize('spike_step', [0, 1, 5])
def test_a_neuron_that_spikes_as_its_trace_runs_out_is_listed_once(spike_step):
    # Found in review: a neuron still on the list of active post traces (its trace's age equal
    # to the table's length) that spiked was appended again, so every later input spike
    # depressed its weights twice (and counted twice) until the trace ran out. The same
    # history must give the same plasticity whatever step of the call it falls on.
    config = STDPConfig(n_inputs=2, n_neurons=2)
    const = simulation_constants(config, DynamicsParams())
    length = len(const.tab_post1)

    def run(first):
        w = np.array([[30.0, 0.0], [0.5, 0.0]], np.float32)
        state = kernels.empty_state(2, 2)
        kernels.reset_state(state, const.par)
        state.last_post[0] = first - length  # neuron 0's trace is exactly `length` old at `first`
        # Input 0 at step `first` (neuron 0 spikes), input 1 at the next (depression of w[1, 0]).
        row_ptr = np.array([0] * (first + 1) + [1, 2], np.int64)
        counts = np.zeros(2, np.int64)
        ops = np.zeros(kernels.N_OPS, np.int64)
        kernels.simulate(w, np.zeros(2), state, np.array([0, 1], np.int32), row_ptr, True,
                         const, kernels.NO_EXIT, counts, ops)
        assert counts.tolist() == [1, 0]
        return w[1, 0], ops[kernels.OP_PLASTICITY]

    assert run(spike_step) == run(0)  # at step 0 the neuron starts off the list
