"""
Every model family implements the one interface of core/model.py (the family conformance test).

Parametrised over both families, built small (an STDP network with a readout assigned, a
converted network of frames and one of events) and as shipped (``models/``): the attributes
and their types, ``infer`` on each input kind the model lists (shapes and dtypes of the one
result type), the one validation of ``T`` (missing, 0, bool, not an int, or not the input's own
step count), unsupported input kinds, ``learn`` exactly when ``learns_online``, the knobs, early
exit within ``T``, determinism for a fixed seed, and the event path the family chooses.
"""

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from topspark_ros.core.checkpoint import load_checkpoint
from topspark_ros.core.converted import ConvertedConfig, ConvertedNetwork
from topspark_ros.core.energy import OpCounts
from topspark_ros.core.events import empty_events
from topspark_ros.core.events.encode import EventEncoding, EventModelError, infer_events
from topspark_ros.core.inputs import EventFrames, SpikeEvents
from topspark_ros.core.model import (check_timesteps, InferenceResult, ModelResult,
                                     OperationCounts, SpikingModel)
from topspark_ros.core.preprocess import FrameSpec
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
from topspark_ros.core.topspark.early_exit import EarlyExit
from topspark_ros.core.topspark.knobs import Knob, STAGES

MODELS = Path(__file__).resolve().parents[2] / 'models'
KINDS = (np.ndarray, SpikeEvents, EventFrames)
B = 3
T = 6


def _tiny_stdp():
    model = DiehlCookNetwork(STDPConfig(n_neurons=8, n_classes=3, seed=0))
    images = np.random.default_rng(0).integers(0, 256, (12, 28, 28), dtype=np.uint8)
    model.learn(images, timesteps=30, seed=1)
    model.assign_labels(images, np.arange(12) % 3, timesteps=30, seed=2)
    return model


def _tiny_converted():
    return ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=8, n_classes=4))


def _event_converted():
    config = ConvertedConfig(channels=2, widths=(4, 8), hidden=8, n_classes=2,
                             mean=(0.0, 0.0), std=(1.0, 1.0))
    return ConvertedNetwork(config, event_encoding=EventEncoding('frames', 34, 34,
                                                                 polarity='channels'))


BUILDERS = {
    'stdp-tiny': _tiny_stdp,
    'converted-tiny': _tiny_converted,
    'converted-events': _event_converted,
    'stdp-shipped': lambda: load_checkpoint(MODELS / 'stdp_fmnist_n400.json')[0],
    'converted-shipped': lambda: load_checkpoint(MODELS / 'converted_fmnist_vgg.json')[0],
}


@pytest.fixture(scope='module', params=sorted(BUILDERS))
def model(request):
    """Return one model of each case (module-wide: tests that learn use a copy)."""
    return BUILDERS[request.param]()


def _inputs(model, kind, timesteps=T, seed=0):
    """Return a batch of ``B`` inputs of ``kind`` for ``model`` (``timesteps`` steps)."""
    rng = np.random.default_rng(seed)
    if kind is np.ndarray:
        return rng.integers(0, 256, (B,) + model.input_spec.shape, dtype=np.uint8)
    spec = model.input_spec  # an event model's input size (one channel)
    if kind is SpikeEvents:
        n_inputs = (model.default_event_encoding().n_inputs if kind in model.input_kinds
                    else spec.height * spec.width)
        return SpikeEvents.from_dense(rng.random((timesteps, B, n_inputs)) < 0.05)
    return EventFrames(rng.poisson(0.2, (B, timesteps, 2, spec.height, spec.width)))


def _check_result(model, result, timesteps=T, batch=B):
    assert isinstance(result, InferenceResult) and isinstance(result, ModelResult)
    assert result.evidence.ndim == 2 and result.evidence.shape[0] == batch
    assert result.timesteps_used.dtype == np.int64 and result.timesteps_used.shape == (batch,)
    assert np.all((result.timesteps_used >= 1) & (result.timesteps_used <= timesteps))
    assert result.scores.shape == (batch, model.n_classes)
    assert result.scores.dtype == np.float64
    assert result.predicted.dtype == np.int64 and result.predicted.shape == (batch,)
    # A class, or -1 (NO_CLASS) for an input without evidence: all its scores 0.
    silent = ~(result.scores.max(axis=1) > 0)
    assert np.all(np.where(silent, result.predicted == -1, (result.predicted >= 0)
                           & (result.predicted < model.n_classes)))
    assert result.spike_count.dtype == np.int64 and result.spike_count.shape == (batch,)
    assert isinstance(result.ops, OperationCounts)
    assert np.asarray(result.ops.spikes).shape == (batch,)
    assert isinstance(result.energy_ops(0), OpCounts)
    assert isinstance(result.ops.mean_energy_ops(), OpCounts)
    assert isinstance(result.ops.totals(), dict)
    assert np.array_equal(model.readout.predict(result.evidence), result.predicted)


def test_attributes_are_present_and_typed(model):
    assert isinstance(model, SpikingModel)
    assert isinstance(model.checkpoint_family, str) and model.checkpoint_family
    assert isinstance(model.n_classes, int) and model.n_classes >= 2
    assert isinstance(model.input_spec, FrameSpec)
    kinds = model.input_kinds
    assert isinstance(kinds, tuple) and kinds and set(kinds) <= set(KINDS)
    assert isinstance(model.learns_online, bool)
    assert dataclasses.is_dataclass(model.params)
    assert model.params_for_values({}) == model.params
    assert model.readout is not None and callable(model.readout.predict)
    encoding = model.event_encoding
    assert encoding is None or isinstance(encoding, EventEncoding)


def test_a_result_built_from_its_fields_is_the_constructors():
    # Issue 16: InferenceResult.from_fields (a one-frame call's, without the frozen
    # dataclass's __init__) builds the same result, as frozen.
    result = DiehlCookNetwork(STDPConfig(n_neurons=5)).infer(np.zeros((2, 28, 28), np.uint8),
                                                             timesteps=3)
    names = [f.name for f in dataclasses.fields(InferenceResult)]
    values = [getattr(result, name) for name in names]
    built = InferenceResult.from_fields(*values)
    assert type(built) is InferenceResult
    assert all(getattr(built, name) is value for name, value in zip(names, values))
    assert vars(built).keys() == vars(InferenceResult(*values)).keys()
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.scores = None
    assert dataclasses.replace(built, predicted=None).evidence is built.evidence


def test_knobs_are_fields_of_the_params(model):
    knobs = model.knobs
    assert isinstance(knobs, tuple) and knobs and all(isinstance(k, Knob) for k in knobs)
    fields = {f.name for f in dataclasses.fields(model.params)}
    names = [k.name for k in knobs]
    assert len(set(names)) == len(names) and set(names) <= fields
    assert {k.stage for k in knobs} == (set(STAGES) if model.learns_online else {'inference'})
    for knob in knobs:
        assert knob.origin is None or knob.origin in fields
        for factor in knob.factors + knob.search:
            value = knob.value(model.params, factor)
            assert getattr(model.params_for_values({knob.name: value}), knob.name) == value


@pytest.mark.parametrize('kind', KINDS, ids=lambda k: k.__name__)
def test_infer_on_every_kind_it_takes(model, kind):
    if kind not in model.input_kinds:
        with pytest.raises(TypeError, match='this model takes'):
            model.infer(_inputs(model, kind), timesteps=T)
        return
    result = model.infer(_inputs(model, kind), timesteps=T, seed=4)
    _check_result(model, result)
    assert result.timesteps_used.tolist() == [T] * B
    again = model.infer(_inputs(model, kind), timesteps=T, seed=4)  # deterministic
    assert np.array_equal(again.evidence, result.evidence)
    assert np.array_equal(again.predicted, result.predicted)
    exits = model.infer(_inputs(model, kind), timesteps=T, seed=4,
                        early_exit=EarlyExit(margin=1e-9, min_steps=1))
    _check_result(model, exits)
    used = exits.timesteps_used
    assert np.all((used >= 1) & (used <= T))
    if kind is EventFrames:  # one count frame per input, held over any T
        held = EventFrames(_inputs(model, kind).counts.sum(axis=1))
        assert held.timesteps is None
        _check_result(model, model.infer(held, timesteps=T + 2), timesteps=T + 2)


def test_timesteps_are_explicit_and_checked_once(model):
    kind = model.input_kinds[0]
    inputs = _inputs(model, kind)
    with pytest.raises(TypeError, match='timesteps'):
        model.infer(inputs)
    for bad in (0, -2, True, False, 2.5, '4', None):
        with pytest.raises(ValueError, match='timesteps must be a positive int'):
            model.infer(inputs, timesteps=bad)
    assert check_timesteps(np.int64(3)) == 3
    for kind in model.input_kinds:
        if kind is not np.ndarray:  # inputs with their own step count
            with pytest.raises(ValueError, match=f'{T}'):
                model.infer(_inputs(model, kind, timesteps=T), timesteps=T + 1)


def test_unsupported_inputs_name_the_kinds_it_takes(model):
    frames = _inputs(model, model.input_kinds[0])
    for bad in (list(frames), {'images': frames}, None):
        with pytest.raises(TypeError, match='this model takes'):
            model.infer(bad, timesteps=T)


def test_learn_exactly_when_learning_online(model):
    learner = copy.deepcopy(model)
    inputs = _inputs(model, model.input_kinds[0])
    if not model.learns_online:
        with pytest.raises(RuntimeError, match='do not learn on-line'):
            learner.learn(inputs, timesteps=T)
        return
    result = learner.learn(inputs, timesteps=T, seed=1)
    assert isinstance(result.ops.energy_ops(0), OpCounts)
    with pytest.raises(ValueError, match='timesteps must be a positive int'):
        learner.learn(inputs, timesteps=0)
    fresh = model.untrained(n_neurons=4, seed=2, params=model.params)
    assert type(fresh) is type(model) and fresh.readout is None
    fresh.learn(inputs, timesteps=T, seed=1)


def test_events_take_the_path_the_family_chooses(model):
    window = empty_events(40)
    window['x'] = np.arange(40) % 34
    window['y'] = (np.arange(40) * 7) % 34
    window['p'] = np.arange(40) % 2
    window['t'] = np.arange(40) * 50
    try:
        encoding = model.default_event_encoding()
    except EventModelError:
        assert model.event_encoding is None
        with pytest.raises(EventModelError):
            infer_events(model, [window], sensor_size=(34, 34), timesteps=T)
        return
    assert isinstance(encoding, EventEncoding)
    assert model.event_encoding in (None, encoding)
    result = infer_events(model, [window, window], sensor_size=(34, 34), timesteps=T)
    _check_result(model, result, batch=2)
