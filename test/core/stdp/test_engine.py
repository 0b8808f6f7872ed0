"""Tests of the numba engine: its state, its column statistics, its kernels' two drivers."""

import math

import numpy as np
import pytest

from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, initial_weights
from topspark_ros.core.stdp import kernels, simulation_constants, STDPConfig
from topspark_ros.core.stdp.encoding import draw_seeds, log_no_spike, poisson_events
from topspark_ros.core.stdp.encoding import spike_probabilities
from topspark_ros.core.stdp.engine import NumbaEngine, PoissonInput, trace_table
from topspark_ros.core.stdp.readout import assign_labels


def test_simulation_constants_are_the_kernels_form_of_the_parameters():
    config = STDPConfig(n_neurons=5, dt_ms=0.5, between_samples='rest', rest_ms=30.0)
    params = DynamicsParams(tau_v_ms=50.0, refractory_ms=2.2, theta_plus_mv=0.1,
                            theta_scale=0.5)
    const = simulation_constants(config, params)
    assert const.par[kernels.P_DECAY_V] == math.exp(-0.5 / 50.0)
    assert const.par[kernels.P_THETA_PLUS] == 0.1 * 0.5 and const.theta_scale == 0.5
    assert const.ipar[kernels.I_REFRAC] == 4 and const.ipar[kernels.I_REST_STEPS] == 60
    assert const.ipar[kernels.I_POPULATIONS] == 1 and const.ipar[kernels.I_TRIPLET] == 1
    assert const.norm == 78.4
    # Tables exp(-k dt / tau) up to exp(-40).
    table = trace_table(20.0, 0.5)
    assert len(table) == 1601 and table[0] == 1.0 and table[-1] == pytest.approx(np.exp(-40))
    assert np.array_equal(const.tab_pre, table)


def test_engine_state_starts_at_rest_and_reset_forgets_it(images):
    config = STDPConfig(n_neurons=12, between_samples='rest', rest_ms=10.0)
    engine = NumbaEngine(initial_weights(config), np.zeros(12))
    assert engine.state is None
    params = DynamicsParams(v_rest_mv=-70.0)
    const = simulation_constants(config, params)
    log_q = np.zeros((1, 784))   # a silent input: the state stays at rest
    engine.learn(PoissonInput(log_q, np.zeros(1, np.uint64)), 5, const)
    state = engine.state
    assert isinstance(state, kernels.EngineState)
    assert np.all(state.v == -70.0) and np.all(state.v_inh == config.inh_v_rest_mv)
    for name in ('refr', 'refr_inh', 'prev_exc', 'prev_inh'):
        assert np.all(getattr(state, name) == 0), name
    assert np.all(state.last_pre == kernels.NEVER) and np.all(state.last_post == kernels.NEVER)
    assert state.last_pre.shape == (784,) and state.v.shape == (12,)
    # After real input the state has moved; reset_state drops it until the next call.
    model = DiehlCookNetwork(config)
    model.learn(images[:1], timesteps=40, seed=1)
    moved = model._engine.state
    assert (moved.last_pre != kernels.NEVER).any()
    model.reset_state()
    assert model._engine.state is None


def test_scaled_theta_is_put_back_after_inference_and_rescaled_after_learning():
    engine = NumbaEngine(np.zeros((2, 3), np.float32), np.array([1.0, 2.0, 4.0]))
    stored = engine.th
    with engine.scaled_theta(0.5, learning=False):
        assert engine.th.tolist() == [0.5, 1.0, 2.0]
        engine.th[0] = 7.0
    assert engine.th is stored and stored.tolist() == [1.0, 2.0, 4.0]
    with engine.scaled_theta(0.5, learning=True):
        engine.th[0] = 7.0
    assert engine.th.tolist() == [14.0, 2.0, 4.0]
    with engine.scaled_theta(1.0, learning=True):
        assert engine.th.tolist() == [14.0, 2.0, 4.0]


@pytest.mark.parametrize('between', ['reset', 'rest'])
def test_learning_keeps_the_column_sums_of_the_written_columns(images, between):
    # The engine keeps per-column sums between calls: they must be those of the weights.
    model = DiehlCookNetwork(STDPConfig(n_neurons=30, between_samples=between, rest_ms=30.0))
    for k in range(3):
        model.learn(images[k:k + 1], timesteps=60, seed=k)
    changed, sums, peaks = model._engine._columns
    w = model.weights.astype(np.float64)
    clean = ~changed
    assert clean.any()
    np.testing.assert_array_equal(sums[clean], np.cumsum(w, axis=0)[-1][clean])
    np.testing.assert_array_equal(peaks[clean], w.max(axis=0)[clean])


def test_serial_inference_kernel_matches_the_parallel_one(images):
    # Issue 16: batch 1 runs without a parallel region (infer_serial, its tuples flattened),
    # with the same results, from drawn trains and from given events; its scores are the
    # readout's.
    config = STDPConfig(n_neurons=40)
    w, theta = initial_weights(config), np.zeros(40)
    const = simulation_constants(config, DynamicsParams())
    seeds = draw_seeds(np.random.default_rng(3), len(images))
    events = poisson_events(images, 50, 128.0, 1.0, seeds)
    log_q = log_no_spike(spike_probabilities(images, 128.0, 1.0))
    for source in (PoissonInput(log_q, seeds), events):
        inputs = NumbaEngine._inputs(source)
        outputs = []
        for serial in (False, True):
            counts = np.zeros((len(images), 40), np.int64)
            ops = np.zeros((len(images), kernels.N_OPS), np.int64)
            steps = np.zeros(len(images), np.int64)
            if serial:
                readout = assign_labels(outputs[0][0], np.arange(len(images)) % 10, 10)
                scores = np.full((len(images), 10), np.nan)
                kernels.infer_serial(w, theta, *inputs, 50, *const, *kernels.NO_EXIT, counts,
                                     ops, steps, *readout.vote_tables, scores)
                assert np.array_equal(scores, readout.scores(counts))
            else:
                kernels.infer_batch(w, theta, inputs, 50, const, kernels.NO_EXIT, counts, ops,
                                    steps)
            outputs.append((counts, ops, steps))
        for a, b in zip(*outputs):
            assert np.array_equal(a, b)
        assert outputs[0][0].sum() > 0 and list(outputs[0][2]) == [50] * len(images)


def test_one_sample_calls_give_what_the_batch_gives_it(images):
    # A camera stream's calls (batch 1: the serial kernel, its tuples flattened, the scores
    # counted in it) against the parallel kernel on the whole batch: with early exit, scaled
    # thresholds and a readout, every figure of every sample is the same.
    model = DiehlCookNetwork(STDPConfig(n_neurons=30))
    model.learn(images, timesteps=60, seed=1)
    model.assign_labels(images, np.arange(8) % 3, timesteps=60, seed=2)
    engine, vote = model._engine, model.readout.vote_tables
    const = model._constants(DynamicsParams(theta_scale=0.8))
    exit_rule = kernels.ExitRule(*model._exit_votes(), 1.0, 5)
    seeds = draw_seeds(np.random.default_rng(4), len(images))
    levels = images.reshape(len(images), -1)
    table = model._log_q_table(DynamicsParams().input_rate_hz)
    theta_before = engine.theta()
    batch = engine.infer(PoissonInput(None, seeds, levels, table), 80, const, exit_rule, vote)
    assert batch[2].min() < 80 and batch[0].sum() > 0  # some samples exit early
    for i in range(len(images)):
        one = engine.infer(PoissonInput(None, seeds[i:i + 1], levels[i:i + 1], table), 80,
                           const, exit_rule, vote)
        for got, want in zip(one, batch):
            assert np.array_equal(got, want[i:i + 1])
    assert np.array_equal(batch[3], model.readout.scores(batch[0]))
    assert np.array_equal(engine.theta(), theta_before)  # scaled where compared only
    assert engine.infer(PoissonInput(None, seeds[:1], levels[:1], table), 80, const)[3] is None


def test_the_serial_kernel_takes_the_tuples_fields_in_their_order():
    # NumbaEngine.infer passes *inputs, *const, *exit_rule positionally: a field added to (or
    # moved in) one of the tuples must show here, not shift the arguments silently.
    names = kernels.infer_serial.py_func.__code__.co_varnames[
        :kernels.infer_serial.py_func.__code__.co_argcount]
    flat = (('w', 'theta') + kernels.BatchInput._fields + ('timesteps',)
            + kernels.SimulationConstants._fields + kernels.ExitRule._fields
            + ('counts', 'ops', 'steps_used', 'bins', 'divisors', 'scores'))
    assert names == flat


def test_the_frame_kernel_takes_the_constants_fields_in_their_order():
    # NumbaEngine.infer_frame passes *const positionally between the input and the outputs.
    code = kernels.infer_frame.py_func.__code__
    names = code.co_varnames[:code.co_argcount]
    assert names == (('w', 'theta', 'levels', 'table', 'scales', 'seeds', 'timesteps')
                     + kernels.SimulationConstants._fields
                     + ('counts', 'ops', 'steps_used', 'bins', 'divisors', 'scores'))


def test_the_learning_frame_kernel_takes_the_tuples_fields_in_their_order():
    # NumbaEngine.learn_frame passes *state, *const and *columns positionally.
    from topspark_ros.core.stdp.normalise import ColumnStats
    code = kernels.learn_frame.py_func.__code__
    names = code.co_varnames[:code.co_argcount]
    assert names == (('w', 'theta') + kernels.EngineState._fields
                     + ('levels', 'table', 'seeds', 'timesteps')
                     + kernels.SimulationConstants._fields + ColumnStats._fields
                     + ('counts', 'ops'))


def _frame_results_equal(got, want) -> None:
    assert np.array_equal(got.evidence, want.evidence)
    assert np.array_equal(got.timesteps_used, want.timesteps_used)
    for name in got.ops.FIELDS:
        assert np.array_equal(getattr(got.ops, name), getattr(want.ops, name)), name
    assert got.ops.totals() == want.ops.totals()
    if want.scores is None:
        assert got.scores is None and got.predicted is None
    else:
        assert np.array_equal(got.scores, want.scores)
        assert np.array_equal(got.predicted, want.predicted)
        assert got.predicted.dtype == want.predicted.dtype == np.int64


def test_a_one_frame_call_gives_what_the_general_path_gives(images):
    # Issue 16: one C-contiguous uint8 frame without early exit takes a shorter path
    # (STDPNetwork._infer_frame, the engine's infer_frame, kernels.infer_frame). The general
    # path runs for the same frame when it is not C-contiguous: every figure the same, the
    # model's random stream drawn alike, with and without a readout, at scaled thresholds and
    # another input rate (another table of levels, whose gap scales the engine keeps).
    import copy
    model = DiehlCookNetwork(STDPConfig(n_neurons=30))
    model.learn(images, timesteps=60, seed=1)
    calls = []
    original = model._infer_frame
    model._infer_frame = lambda *args: calls.append(args) or original(*args)
    for readout in (False, True):
        if readout:
            model.assign_labels(images, np.arange(8) % 3, timesteps=60, seed=2)
        other = copy.deepcopy(model)  # the same random stream
        for i, params in enumerate((None, DynamicsParams(theta_scale=0.8),
                                    DynamicsParams(input_rate_hz=40.0), None)):
            frame = images[i:i + 1]
            general = np.asfortranarray(np.stack([frame[0], frame[0]]))[:1]
            assert frame.flags.c_contiguous and not general.flags.c_contiguous
            for seed in (None, 7):
                before = len(calls)
                got = model.infer(frame, timesteps=40, params=params, seed=seed)
                assert len(calls) == before + 1  # the short path
                want = other.infer(general, timesteps=40, params=params, seed=seed)
                assert len(calls) == before + 1  # the general one
                _frame_results_equal(got, want)
                assert got.evidence.sum() > 0
                flat = model.infer(frame.reshape(1, -1), timesteps=40, params=params, seed=3)
                _frame_results_equal(flat, other.infer(general, timesteps=40, params=params,
                                                       seed=3))
    # Not for the short path: a batch, floats, early exit; bad calls raise as before.
    from topspark_ros.core.topspark.early_exit import EarlyExit
    before = len(calls)
    model.infer(images[:2], timesteps=5)
    model.infer(images[:1] / 255.0, timesteps=5)
    model.infer(images[:1], timesteps=5, early_exit=EarlyExit(margin=1.0, min_steps=2))
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match='timesteps'):
            model.infer(images[:1], timesteps=bad)
    with pytest.raises(ValueError, match='pixels'):
        model.infer(images[:1, :27], timesteps=5)
    assert len(calls) == before


def test_the_frame_kernel_is_called_with_the_types_of_its_entry_point(images, monkeypatch):
    # Issue 16: the engine calls the one-frame kernel through the compiled code of its first
    # call (engine._CompiledKernel), which unboxes the arguments as that call's types and
    # checks no more: every call must bring the same types (only an input array's write flag
    # may differ). Recorded over the calls a stream makes: with and without a readout, scaled
    # thresholds, another input rate, seeds given or not, and read-only frames (as a frame
    # read from a message's bytes is), which must classify as writable ones do.
    import copy
    import inspect
    import numba
    from topspark_ros.core.stdp import engine

    def writable(types):
        return tuple(t.copy(readonly=False) if isinstance(t, numba.types.Array) else t
                     for t in types)

    class Recorder:
        def __init__(self, real):
            self.real, self.signatures = real, set()

        def call(self, *args):
            self.signatures.add(writable(kernels.infer_frame.typeof_pyval(a) for a in args))
            self.real.call(*args)

    recorder = Recorder(engine._FRAME_KERNEL)
    monkeypatch.setattr(engine, '_FRAME_KERNEL', recorder)
    model = DiehlCookNetwork(STDPConfig(n_neurons=30))
    model.learn(images, timesteps=40, seed=1)
    for readout in (False, True):
        if readout:
            model.assign_labels(images, np.arange(8) % 3, timesteps=40, seed=2)
        for params in (None, DynamicsParams(theta_scale=0.8), DynamicsParams(input_rate_hz=40.0)):
            for seed in (None, 5):
                frame = images[3:4].copy()
                read_only = np.frombuffer(frame.tobytes(), np.uint8).reshape(frame.shape)
                assert not read_only.flags.writeable
                twin = copy.deepcopy(model)
                got = model.infer(read_only, timesteps=20, params=params, seed=seed)
                _frame_results_equal(got, twin.infer(frame, timesteps=20, params=params,
                                                     seed=seed))
    assert len(recorder.signatures) == 1
    # The compiled code's entry point, not the bound method of the first call.
    assert getattr(recorder.real.call, '__func__', None) is not engine._CompiledKernel._first_call
    assert not inspect.ismethod(recorder.real.call)
    assert recorder.signatures & {writable(s) for s in kernels.infer_frame.overloads}


def test_a_kernel_that_is_not_compiled_is_called_as_it_is():
    # Without the JIT (NUMBA_DISABLE_JIT=1) a kernel is a Python function with no compiled
    # code: _CompiledKernel calls it as it is, at the first call and after.
    from topspark_ros.core.stdp.engine import _CompiledKernel
    calls = []

    def kernel(a, b):
        calls.append((a, b))

    wrapped = _CompiledKernel(kernel)
    wrapped.call(1, 2)
    wrapped.call(3, 4)
    assert calls == [(1, 2), (3, 4)] and wrapped.call is kernel


@pytest.mark.parametrize('between', ['reset', 'rest'])
def test_learning_from_one_frame_gives_what_the_general_path_gives(images, between):
    # Issue 16: one C-contiguous uint8 frame learns through kernels.learn_frame (the engine's
    # tuples given field by field: a robot learning on line from its camera). Frame after
    # frame, against a twin learning the same frames through the general path (not
    # C-contiguous): the same spikes, operation counts, weights, thresholds and state, at
    # scaled thresholds and another input rate, seeds given or from the model's stream.
    import copy
    model = DiehlCookNetwork(STDPConfig(n_neurons=30, between_samples=between))
    twin = copy.deepcopy(model)
    calls, spikes = [], 0
    original = model._engine.learn_frame
    model._engine.learn_frame = lambda *args: calls.append(args) or original(*args)
    for i in range(12):
        params = (None, DynamicsParams(theta_scale=0.8), DynamicsParams(input_rate_hz=40.0))[i % 3]
        frame = images[i % 8:i % 8 + 1]
        general = np.asfortranarray(np.stack([frame[0], frame[0]]))[:1]
        seed = None if i % 2 else i
        got = model.learn(frame, timesteps=30, params=params, seed=seed)
        want = twin.learn(general, timesteps=30, params=params, seed=seed)
        assert len(calls) == i + 1  # the short path, and only for the frame
        assert np.array_equal(got.exc_spike_counts, want.exc_spike_counts)
        assert got.timesteps == want.timesteps == 30
        spikes += int(got.exc_spike_counts.sum())
        for name in got.ops.FIELDS:
            assert np.array_equal(getattr(got.ops, name), getattr(want.ops, name)), name
    assert spikes > 0
    assert np.array_equal(model.weights, twin.weights)
    assert np.array_equal(model.theta, twin.theta)
    for a, b in zip(model._engine.state, twin._engine.state):
        assert np.array_equal(a, b)
    assert not np.array_equal(model.weights, DiehlCookNetwork(STDPConfig(n_neurons=30)).weights)
    # Not for the short path: a batch, floats; bad calls raise as before.
    model.learn(images[:2], timesteps=5)
    model.learn(images[:1] / 255.0, timesteps=5)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match='timesteps'):
            model.learn(images[:1], timesteps=bad)
    assert len(calls) == 12
