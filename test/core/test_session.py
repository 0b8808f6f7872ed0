"""ClassifierSession: a frame or event windows through a tiny model, the per-T parameter cache."""

import numpy as np
import pytest

from topspark_ros.core.energy import EnergyModel, OpCounts
from topspark_ros.core.events import empty_events
from topspark_ros.core.session import ClassifierSession
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
from topspark_ros.core.stdp.readout import Readout

N_NEURONS = 10
SENSOR = (34, 34)


@pytest.fixture(scope='module')
def model():
    """Return an untrained 10-neuron network whose neuron j votes for class j."""
    return DiehlCookNetwork(STDPConfig(n_neurons=N_NEURONS, seed=0), readout=Readout(
        class_rates=np.eye(N_NEURONS), assignments=np.arange(N_NEURONS)))


def _frame() -> np.ndarray:
    frame = np.zeros((28, 28), np.uint8)
    frame[6:22, 10:18] = 255  # a bright bar: enough input spikes at T=32
    return frame


def _window(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = empty_events(n)
    events['x'] = rng.integers(0, SENSOR[0], n)
    events['y'] = rng.integers(0, SENSOR[1], n)
    events['p'] = rng.integers(0, 2, n)
    events['t'] = np.sort(rng.integers(0, 100_000, n))
    return events


class CountingProfile:
    """A profile stand-in: ``theta_scale`` enhanced at T=16 only; counts look-ups."""

    agreement_based = False
    entries = ()

    def __init__(self, theta_scale: float) -> None:
        self.theta_scale = theta_scale
        self.calls = []

    def params_for(self, timesteps: int):
        self.calls.append(timesteps)
        return {'theta_scale': self.theta_scale} if timesteps == 16 else None


def test_a_frame_is_classified_with_its_counts_energy_and_names(model) -> None:
    names = [f'c{i}' for i in range(N_NEURONS)]
    session = ClassifierSession(model, class_names=names, crop='none',
                                energy_model=EnergyModel('loihi'))
    prediction = session.classify(_frame(), 'mono', 32)
    assert prediction.timestep_budget == prediction.timesteps_used == 32
    assert not prediction.early_exit
    assert prediction.scores.shape == (N_NEURONS,) and prediction.scores.dtype == np.float32
    if prediction.scores.sum() > 0:
        assert prediction.class_id == int(np.argmax(prediction.scores))
        assert prediction.class_name == names[prediction.class_id]
        assert prediction.confidence == pytest.approx(
            prediction.scores.max() / prediction.scores.sum())
    else:
        assert (prediction.class_id, prediction.class_name) == (-1, '')
    assert prediction.spike_count >= 0 and prediction.ops.neuron_updates > 0
    assert prediction.energy_preset == 'loihi'
    assert prediction.energy_j == pytest.approx(
        EnergyModel('loihi').estimate(prediction.ops).compute_j)
    assert prediction.latency_ms > 0
    with pytest.raises(ValueError, match='timesteps'):
        session.classify(_frame(), 'mono', 0)
    with pytest.raises(ValueError, match='class names'):
        ClassifierSession(model, class_names=['only one'])


def test_enhanced_parameters_are_resolved_once_per_t_until_the_profile_changes(model) -> None:
    profile = CountingProfile(0.5)
    session = ClassifierSession(model, profile=profile)
    first = session.params_for(16)
    assert first.theta_scale == 0.5 and first == model.params.replace(theta_scale=0.5)
    assert session.params_for(16) is first  # a hit: the profile is not asked again
    assert session.params_for(32) is None and session.params_for(32) is None
    for _ in range(3):
        session.classify(_frame(), 'mono', 16)
    assert profile.calls == [16, 32]  # one look-up per T, not one per frame
    other = CountingProfile(0.25)
    session.profile = other  # invalidates what the old profile gave
    assert session.params_for(16).theta_scale == 0.25 and other.calls == [16]
    session.profile = None
    assert session.params_for(16) is None
    assert ClassifierSession(model).params_for(16) is None


def test_learning_is_charged_to_the_prediction_of_its_frame(model) -> None:
    import copy
    learner = copy.deepcopy(model)
    session = ClassifierSession(learner, crop='none')
    weights = np.array(learner.weights, copy=True)
    prediction = session.classify(_frame(), 'mono', 32)
    learnt = session.learn(_frame(), 'mono', 32)
    assert isinstance(learnt, OpCounts) and learnt.plasticity_updates > 0
    assert np.abs(np.asarray(learner.weights) - weights).sum() > 0  # STDP changed the weights
    charged = session.charge_learning(prediction, learnt)
    assert charged.learnt and not prediction.learnt  # said even if no weight changed
    assert charged.ops == prediction.ops + learnt
    assert charged.energy_j == pytest.approx(session.energy_model.estimate(charged.ops).compute_j)
    assert charged.energy_j > prediction.energy_j
    assert (charged.class_id, charged.timesteps_used) == \
        (prediction.class_id, prediction.timesteps_used)


def test_event_windows_give_one_prediction_each_and_can_be_learnt(model) -> None:
    import copy
    session = ClassifierSession(copy.deepcopy(model))
    session.check_events()  # a frames-trained STDP network takes events (merged trains)
    windows = [_window(2000, seed=1), _window(500, seed=2)]
    batch = session.classify_events(windows, SENSOR, 16)
    single = [session.classify_events([w], SENSOR, 16)[0] for w in windows]
    assert len(batch) == 2
    for a, b in zip(batch, single):
        np.testing.assert_array_equal(a.scores, b.scores)
        assert a.timestep_budget == 16 and a.spike_count == b.spike_count
        assert a.ops.neuron_updates > 0 and a.energy_j > 0
    with pytest.raises(ValueError, match='timesteps'):
        session.classify_events(windows, SENSOR, 0)
    learnt = session.learn_events(windows, SENSOR, 16)
    assert len(learnt) == 2 and all(ops.plasticity_updates >= 0 for ops in learnt)
    session.warm_up_events(SENSOR)  # every decoder and the model, on a synthetic window
    weights = session.model.weights
    session.warm_up_events(SENSOR, learning=True)  # a copy learns: the model stays as it is
    np.testing.assert_array_equal(session.model.weights, weights)


def test_warming_up_for_learning_loads_the_learning_kernel_and_learns_nothing() -> None:
    """
    In a fresh process, a warm-up for on-line learning readies the kernel a frame learns with.

    Without it the first learnt frame compiled or loaded that kernel (seconds where numba's
    cache is cold) while the frames arriving meanwhile were dropped. The model itself learns
    nothing: a copy of it learns the blank frame.
    """
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import numpy as np
        from topspark_ros.core.session import ClassifierSession
        from topspark_ros.core.stdp import DiehlCookNetwork, kernels, STDPConfig
        from topspark_ros.core.stdp.readout import Readout
        model = DiehlCookNetwork(STDPConfig(n_neurons=10, seed=0), readout=Readout(
            class_rates=np.eye(10), assignments=np.arange(10)))
        weights, theta = model.weights, model.theta
        session = ClassifierSession(model)
        session.warm_up()
        print(len(kernels.learn_frame.signatures))
        session.warm_up(learning=True)
        print(len(kernels.learn_frame.signatures))
        print(np.array_equal(model.weights, weights) and np.array_equal(model.theta, theta))
        """)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['0', '1', 'True']


def test_warming_up_for_events_compiles_every_decoder_kernel() -> None:
    """
    In a fresh process, with the decoders' numba cache cold, every decoder kernel compiles.

    evt3's exact kernel, which a packet joining a running stream needs, was left to the
    first such packet: compiling it then (1.4 s here, where numba's cache is cold or not
    writable) held up the reader while packets arrived. Only the decoders' kernels skip the
    cache (a kernel loaded from it brings its callees along: compiling one compiles, and
    lists, them too); the network's load from it, as they do on a robot after the first run.
    """
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import numba
        from numba.core.caching import NullCache
        from topspark_ros.core.events import stream
        from topspark_ros.core.events.codecs import base, evt3, libcaer, mono
        from topspark_ros.core.session import ClassifierSession
        from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
        from topspark_ros.core.stdp.readout import Readout
        import numpy as np
        kernels = [(module.__name__, name, kernel)
                   for module in (base, evt3, libcaer, mono, stream)
                   for name, kernel in vars(module).items()
                   if isinstance(kernel, numba.core.registry.CPUDispatcher)]
        assert kernels and not any(kernel.signatures for _, _, kernel in kernels)
        for _, _, kernel in kernels:
            kernel._cache = NullCache()  # cold
        model = DiehlCookNetwork(STDPConfig(n_neurons=10, seed=0), readout=Readout(
            class_rates=np.eye(10), assignments=np.arange(10)))
        ClassifierSession(model).warm_up_events((34, 34))
        for module, name, kernel in kernels:
            if not kernel.signatures:
                print(module, name)
        """)
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split('\n') == [''], f'kernels the warm-up left out:\n{done.stdout}'


def test_results_are_scored_by_the_profile_when_it_measured_them(fashion_test) -> None:
    """
    ``calibrated_score``: the accuracy the sweep measured at this T for this confidence.

    Only where the profile's figures describe the result: the T measured, no early-exit rule
    but the one the profile measured, a class, labels (not agreement), the profile's own
    weights (not learnt on line since).
    """
    import dataclasses
    import pathlib

    from topspark_ros.core.topspark.early_exit import EarlyExit
    from topspark_ros.core.topspark.profile import load_profile
    models = pathlib.Path(__file__).resolve().parents[2] / 'models'
    shipped = load_profile(models / 'stdp_fmnist_n400.profile.yaml')  # bins at every T
    profile = dataclasses.replace(shipped, entries=tuple(
        dataclasses.replace(e, confidence_bins=None) if e.timesteps == 64 else e
        for e in shipped.entries))
    session = ClassifierSession.from_checkpoint(str(models / 'stdp_fmnist_n400.json'),
                                                profile=profile)
    images = fashion_test.images[:40]
    results = [session.classify(image, 'mono', 32) for image in images]
    classed = [r for r in results if r.class_id >= 0]
    assert len(classed) >= 30
    entry = profile.entry(32)
    for result in classed:  # (the float32 scores here, float64 in the session: either bin)
        share = float(result.scores.max() / result.scores.sum())
        assert result.calibrated_score in (pytest.approx(entry.calibrated(share * (1 - 1e-6))),
                                           pytest.approx(entry.calibrated(share)))
    # most have one class's evidence only: the score of the results that had all of it
    assert sum(r.calibrated_score == entry.calibrated(1.0) for r in classed) >= 20
    assert 0.75 < entry.calibrated(1.0) < 0.9
    assert all(r.calibrated_score is None for r in results if r.class_id < 0)
    image = images[0]
    assert session.classify(image, 'mono', 64).calibrated_score is None  # no bins at T=64
    assert session.classify(image, 'mono', 33).calibrated_score is None  # T not profiled
    assert session.classify(image, 'mono', 32, early_exit=EarlyExit(2.0, 8)) \
        .calibrated_score is None  # a rule the profile did not measure (its own: below)
    assert all(r.calibrated_score is not None for r in session.classify_frames(
        images[:8], 'mono', 32) if r.class_id >= 0)
    # A frame of one value (a lens cap, a camera blinded): no probability of being right (a
    # review: all white was given 0.83 here, 0.99 by the converted model).
    for value in (0, 255):
        blank = np.full_like(image, value)
        for result in (session.classify(blank, 'mono', 32),
                       session.classify_frames([blank, image], 'mono', 32)[0]):
            assert result.calibrated_score is None, value
    assert session.classify_frames([np.full_like(image, 255), image], 'mono', 32)[1] \
        .calibrated_score is not None
    session.profile = dataclasses.replace(profile, reference_timesteps=350)  # agreement
    assert session.classify(image, 'mono', 32).calibrated_score is None
    session.profile = profile
    assert session.classify(image, 'mono', 32).calibrated_score is not None
    # Why not, in words (the classifier's /diagnostics says it), and inputs unlike the profile's.
    assert session.calibration_gap(32) is None
    assert session.calibration_gap(64).startswith('the profile has no results by confidence')
    assert session.calibration_gap(33) == 'T=33 is not in the profile'
    assert session.calibration_gap(32, early_exit=True).startswith('early exit on')
    assert session.calibration_gap(32, events=True) == \
        'a model trained on frames classifying events'
    windows = [_window(600, seed) for seed in range(4)]
    assert all(p.calibrated_score is None
               for p in session.classify_events(windows, SENSOR, 32))  # noise scored 0.83 once
    session.calibration_off = 'frames prepared with another crop than the training images'
    assert session.classify(image, 'mono', 32).calibrated_score is None
    assert session.calibration_gap(32) == session.calibration_off
    session.calibration_off = None
    session.learn(image, 'mono', 32)  # the weights are no longer those the profile measured
    assert session.classify(image, 'mono', 32).calibrated_score is None
    assert session.calibration_gap(32).startswith('weights learnt on line')


def test_early_exit_results_are_scored_by_the_profiles_early_exit_bins(fashion_test) -> None:
    """
    With early exit on, the profile's results of that rule by confidence score a result.

    Not the full-T bins (other results), and only for the rule the profile measured (margin
    and floor): another rule's results get no calibrated score, said why.
    """
    import dataclasses
    import pathlib

    from topspark_ros.core.topspark.early_exit import EarlyExit
    from topspark_ros.core.topspark.profile import load_profile
    models = pathlib.Path(__file__).resolve().parents[2] / 'models'
    shipped = load_profile(models / 'stdp_fmnist_n400.profile.yaml')
    n = shipped.entry(32).n_samples  # one bin of 40 % right, whatever the confidence
    exits = dataclasses.replace(
        shipped.entry(32), early_exit_accuracy=0.4, early_exit_mean_timesteps=20.0,
        early_exit_margin=3.0, early_exit_min_steps=8,
        early_exit_confidence_bins=((0.0, n, round(0.4 * n)),))
    profile = dataclasses.replace(shipped, entries=tuple(
        exits if e.timesteps == 32 else dataclasses.replace(e, early_exit_confidence_bins=None)
        if e.timesteps == 64 else e for e in shipped.entries))
    session = ClassifierSession.from_checkpoint(str(models / 'stdp_fmnist_n400.json'),
                                                profile=profile)
    rule = EarlyExit(3.0, 8)
    assert session.calibration_gap(32, early_exit=rule) is None
    results = [session.classify(image, 'mono', 32, early_exit=rule)
               for image in fashion_test.images[:12]]
    classed = [r for r in results if r.class_id >= 0]
    assert len(classed) >= 8
    assert all(r.calibrated_score == pytest.approx(0.4) for r in classed)
    plain = session.classify(fashion_test.images[0], 'mono', 32)
    assert plain.calibrated_score != pytest.approx(0.4)  # without early exit: the T's bins
    assert session.classify(fashion_test.images[0], 'mono', 32,
                            early_exit=EarlyExit(2.0, 8)).calibrated_score is None
    assert session.calibration_gap(32, early_exit=EarlyExit(2.0, 8)) == (
        'early exit with margin 2 from step 8; the profile measured margin 3 from step 8 '
        '(early_exit_margin, early_exit_min_steps)')
    assert session.calibration_gap(64, early_exit=rule).startswith(
        'early exit on, and the profile has no results of early exit by confidence at T=64')


def test_a_session_saves_its_class_names_with_the_weights(model, tmp_path) -> None:
    from topspark_ros.core.checkpoint import load_checkpoint
    session = ClassifierSession(model, class_names=[str(i) for i in range(N_NEURONS)])
    path = session.save(tmp_path / 'learnt.json', info={'online_frames': 3})
    loaded, meta = load_checkpoint(path)
    assert meta['info']['class_names'] == [str(i) for i in range(N_NEURONS)]
    assert meta['info']['online_frames'] == 3
    again = ClassifierSession.from_checkpoint(path)
    assert again.class_names == session.class_names
    np.testing.assert_array_equal(np.asarray(loaded.weights), np.asarray(model.weights))


def test_a_profile_of_another_model_is_refused(tmp_path) -> None:
    """The enhanced parameters of another model's profile were applied without a word."""
    import dataclasses
    import pathlib

    from topspark_ros.core.topspark.profile import load_profile
    models = pathlib.Path(__file__).resolve().parents[2] / 'models'
    own = load_profile(models / 'stdp_fmnist_n400.profile.yaml')
    session = ClassifierSession.from_checkpoint(str(models / 'stdp_fmnist_n400.json'),
                                                profile=own)
    assert session.profile is own
    other = dataclasses.replace(own, model_sha256='85bf8658' * 8)
    with pytest.raises(ValueError, match='describes another model'):
        ClassifierSession.from_checkpoint(str(models / 'stdp_fmnist_n400.json'), profile=other)


def test_learnt_weights_keep_their_origin_and_are_not_saved_over(tmp_path) -> None:
    """
    Learnt weights keep their origin and info, and another model is not saved over them.

    A review of on-line learning: a reloaded or another model was saved over learnt weights;
    a learnt checkpoint could not take its base model's profile; its info was dropped.
    """
    from pathlib import Path

    from topspark_ros.core.checkpoint import load_checkpoint
    from topspark_ros.core.topspark.profile import load_profile
    models = Path(__file__).resolve().parents[2] / 'models'
    base = str(models / 'stdp_fmnist_n400.json')
    profile = load_profile(models / 'stdp_fmnist_n400.profile.yaml')
    session = ClassifierSession.from_checkpoint(base, profile=profile)
    frame = np.zeros((28, 28), np.uint8)
    frame[8:20, 10:18] = 200
    session.learn(frame, 'mono', 8)
    out = str(tmp_path / 'learnt.json')
    session.save(out, info={'online_frames': 1})
    _, meta = load_checkpoint(out)
    info = meta['info']
    assert info['base_model_sha256'] == profile.model_sha256 != meta['tensors']['sha256']
    assert info['online_frames'] == 1 and info['dataset']  # the base's info kept
    # but not its figures as if measured of the learnt weights (they were; a review)
    base_info = load_checkpoint(base)[1]['info']
    assert 'accuracy' not in info and 'command' not in info and 'n_eval' not in info
    assert info['base_info'] == {key: base_info[key] for key in
                                 ('accuracy', 'n_eval', 'eval_split', 'command')}
    assert info['timesteps'] == base_info['timesteps']  # what it learnt at stays
    # The learnt checkpoint takes its base's profile (the enhanced parameters it learnt with).
    again = ClassifierSession.from_checkpoint(out, profile=profile)
    assert again.base_model_sha256 == profile.model_sha256
    again.save(out, info={'online_frames': 2})  # the same origin: replaced
    other = ClassifierSession.from_checkpoint(str(models / 'converted_fmnist_vgg.json'))
    with pytest.raises(ValueError, match='learnt from another model'):
        other.save(out)
    assert load_checkpoint(out)[1]['info']['online_frames'] == 2
    assert load_checkpoint(out)[1]['info']['base_info'] == info['base_info']  # saved again
    # Swept into a profile of its own, learning on and saved over its model_path, it still
    # takes that profile at the next start (it recorded the first base, and was refused; a
    # review).
    import dataclasses
    own = dataclasses.replace(profile, model_sha256=load_checkpoint(out)[1]['tensors']['sha256'])
    going_on = ClassifierSession.from_checkpoint(out, profile=own)
    # Its records are of that base from then on: the inputs learnt since it, what it was
    # learnt from kept apart (12 inputs "since" a base that had learnt 9 of them, with the
    # first base's accuracy; a review).
    assert going_on.checkpoint_info['online_frames'] == 0
    assert going_on.checkpoint_info['earlier_bases'] == [{
        'base_model_sha256': profile.model_sha256, 'online_frames': 2,
        'base_info': info['base_info']}]
    going_on.learn(frame, 'mono', 8)
    going_on.save(out, info={'online_frames': 1})
    saved = load_checkpoint(out)[1]['info']
    assert saved['base_model_sha256'] == own.model_sha256 and saved['online_frames'] == 1
    assert 'base_info' not in saved and saved['earlier_bases'][0]['online_frames'] == 2
    again = ClassifierSession.from_checkpoint(out, profile=own)  # its own base: as it is
    assert again.checkpoint_info['online_frames'] == 1


def test_weights_learnt_by_a_version_that_recorded_no_base_still_take_its_profile(
        tmp_path) -> None:
    """
    Learnt checkpoints saved before base_model_sha256 was recorded, after an upgrade.

    Given with their base model's profile (as the README says to go on learning) they were
    refused, so the robot's classifier failed to configure, and the base model saving over
    them was told they were learnt from another model (a review of files from older
    versions). They take the profile with a note; they are never saved over by another run.
    """
    import json
    from pathlib import Path

    from topspark_ros.core.checkpoint import load_checkpoint, metadata_path
    from topspark_ros.core.topspark.profile import load_profile
    models = Path(__file__).resolve().parents[2] / 'models'
    base = str(models / 'stdp_fmnist_n400.json')
    profile = load_profile(models / 'stdp_fmnist_n400.profile.yaml')
    session = ClassifierSession.from_checkpoint(base, profile=profile)
    assert session.notes == []
    frame = np.zeros((28, 28), np.uint8)
    frame[8:20, 10:18] = 200
    session.learn(frame, 'mono', 8)
    old = str(tmp_path / 'old.json')
    session.save(old, info={'online_frames': 7})
    path = metadata_path(old)  # as the version before 3bfcb50 wrote it: no base recorded
    meta = json.loads(path.read_text())
    meta['info'] = {'online_frames': 7, 'class_names': meta['info']['class_names']}
    path.write_text(json.dumps(meta))
    again = ClassifierSession.from_checkpoint(old, profile=profile)
    assert len(again.notes) == 1 and 'earlier version' in again.notes[0]
    # Run with a profile swept of them, they are the base from then on, their 7 inputs
    # apart (they went on counting from 7 under the new base; a review).
    import dataclasses
    own = dataclasses.replace(profile, model_sha256=meta['tensors']['sha256'])
    rebased = ClassifierSession.from_checkpoint(old, profile=own)
    assert rebased.checkpoint_info['online_frames'] == 0
    assert rebased.checkpoint_info['earlier_bases'] == [
        {'base_model_sha256': '', 'online_frames': 7}]
    assert again.base_model_sha256 == profile.model_sha256
    assert again.identity() == (meta['tensors']['sha256'], profile.model_sha256)
    again.save(old, info={'online_frames': 8})  # going on learning from it: replaced
    assert load_checkpoint(old)[1]['info']['base_model_sha256'] == profile.model_sha256
    path.write_text(json.dumps(meta))  # old again; the base model's run does not replace it
    fresh = ClassifierSession.from_checkpoint(base, profile=profile)
    with pytest.raises(ValueError, match='learnt on line by an earlier version.*model_path'):
        fresh.save(old)
    assert load_checkpoint(old)[1]['info'] == meta['info']
    # Without a profile (as the old refusal advised) its base is not known: results name no
    # model, and a save records none (it recorded the file's own SHA as its base, and its
    # base's profile was refused from then on; a review).
    alone = ClassifierSession.from_checkpoint(old)
    assert alone.identity() == ('', '') and alone.base_model_sha256 is None
    alone.save(old, info={'online_frames': 9})  # the file it was loaded from: replaced
    assert 'base_model_sha256' not in load_checkpoint(old)[1]['info']
    alone.learn(frame, 'mono', 8)
    alone.save(old, info={'online_frames': 10})  # and the files it saved (every save after
    alone.save(str(tmp_path / 'next.json'))  # the first was refused; a review)
    alone.learn(frame, 'mono', 8)
    alone.save(str(tmp_path / 'next.json'))
    assert ClassifierSession.from_checkpoint(old, profile=profile).notes  # still taken
    other = str(tmp_path / 'other.json')
    copy = ClassifierSession.from_checkpoint(base)
    copy.save(other)  # a session may save over its own save, learnt or not (it was refused
    copy.save(other)  # as a trained model; a review)
    with pytest.raises(ValueError, match='is a trained model, not weights learnt on line'):
        alone.save(other)  # not over a trained model
    ClassifierSession.from_checkpoint(base).save(other + '.l.json', info={'online_frames': 1})
    with pytest.raises(ValueError, match='not known'):  # nor over another model's weights
        alone.save(other + '.l.json')
    meta = json.loads(path.read_text())  # as saved last: not learnt on line, no base
    del meta['info']['online_frames']
    meta['info'].pop('base_model_sha256', None)
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match='describes another model'):  # another model
        ClassifierSession.from_checkpoint(old, profile=profile)


def test_a_bare_event_window_is_refused_not_split_into_events(model) -> None:
    """list() of one window made one window of every event: 3 000 'no class' (a review)."""
    session = ClassifierSession(model)
    window = _window(300, 1)
    with pytest.raises(ValueError, match=r'one window: pass \[window\]'):
        session.classify_events(window, SENSOR, 8)
    assert len(session.classify_events([window], SENSOR, 8)) == 1


def test_warming_up_leaves_the_models_draws_as_they_were() -> None:
    """warm_up drew from the model's seeds: 36 of 300 later predictions changed (a review)."""
    from topspark_ros.core.stdp.readout import Readout as Votes
    frames = [np.roll(_frame(), k, axis=1) for k in range(6)]

    def predictions(warm: bool) -> list:
        network = DiehlCookNetwork(STDPConfig(n_neurons=N_NEURONS, seed=0), readout=Votes(
            class_rates=np.eye(N_NEURONS), assignments=np.arange(N_NEURONS)))
        session = ClassifierSession(network)
        if warm:
            session.warm_up()
        return [session.classify(f, 'mono', 32).spike_count for f in frames]
    assert predictions(True) == predictions(False)


@pytest.mark.parametrize('family', ['stdp', 'converted'])
def test_both_families_refuse_images_they_cannot_read_as_intensities(family) -> None:
    """
    Refuse NaN, infinity, float images outside [0, 1], and integer types of unknown range.

    The converted family read a float 0..255 frame as a near-binary image and NaN as 0, and
    the STDP family let NaN through its range check (a user review): wrong classes, no error.
    """
    from pathlib import Path

    from topspark_ros.core.checkpoint import load_checkpoint
    models = Path(__file__).resolve().parents[2] / 'models'
    net, _ = load_checkpoint(models / ('stdp_fmnist_n400.json' if family == 'stdp'
                                       else 'converted_fmnist_vgg.json'))
    shape = (2,) + net.input_spec.shape
    bad = {'float 0..255': np.full(shape, 200.0), 'NaN': np.full(shape, np.nan),
           'infinity': np.full(shape, np.inf), 'uint16': np.full(shape, 200, np.uint16)}
    for name, images in bad.items():
        with pytest.raises(ValueError, match='uint8 .0..255. or float in|finite and lie in'):
            net.infer(images, timesteps=4)
    ok = net.infer(np.full(shape, 0.5), timesteps=4).predicted
    assert ok.shape == (2,)


@pytest.mark.parametrize('device, reason', [
    ('meta', 'holds no data'), ('bogus', 'not a torch device'),
    ('mps', 'which MPS does not support'),
    pytest.param('cuda', 'without CUDA|no CUDA device', marks=pytest.mark.skipif(
        __import__('torch').cuda.is_available(), reason='a CUDA device is here'))])
def test_a_device_no_model_can_run_on_is_one_clear_value_error(device, reason) -> None:
    """They failed as torch internals ('meta' only at the first frame; a user review)."""
    from pathlib import Path
    model = Path(__file__).resolve().parents[2] / 'models' / 'stdp_fmnist_n400.json'
    with pytest.raises(ValueError, match=f"device '{device}'.*({reason})"):
        ClassifierSession.from_checkpoint(str(model), device=device)
    with pytest.raises(ValueError, match=reason):
        DiehlCookNetwork(STDPConfig(n_neurons=4), device=device)


def test_the_cpu_by_any_name_is_the_cpu_and_a_missing_cuda_index_is_refused(
        monkeypatch) -> None:
    """
    'cpu:0' runs the numba engine; 'cuda:1' on a machine of one GPU is a clear error.

    'cpu:0' took the torch engine (4 to 90 times slower, the profile's latencies with it),
    and a CUDA index was not checked: torch failed later with its own multi-line error (a
    review of the device paths). The one-GPU machine is torch's answers, patched.
    """
    import torch

    from topspark_ros.core.model import check_device
    assert check_device('cpu:0') == 'cpu'
    assert DiehlCookNetwork(STDPConfig(n_neurons=4), device='cpu:0').engine_name == 'numba'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    assert check_device('cuda:0') == 'cuda:0' and check_device('cuda') == 'cuda'
    with pytest.raises(ValueError, match=r"device 'cuda:1': this machine has 1 CUDA device"):
        check_device('cuda:1')
    # An Intel GPU without float64 (Arc): refused here, not at the first frame (a review).
    from types import SimpleNamespace
    monkeypatch.setattr(torch, 'xpu', SimpleNamespace(
        is_available=lambda: True,
        get_device_properties=lambda i: SimpleNamespace(has_fp64=i == 1)), raising=False)
    assert check_device('xpu:1') == 'xpu:1'
    with pytest.raises(ValueError, match="device 'xpu': the models compute in float64"):
        check_device('xpu')


def test_arguments_of_the_wrong_kind_are_taken_or_refused_clearly(model, tmp_path) -> None:
    """
    Take a preset's name for the energy model; refuse early_exit=True with its reason.

    Both failed at the first frame with AttributeErrors; numpy numbers in a checkpoint's
    info raised json's TypeError (a user review of the core as a library).
    """
    from topspark_ros.core.checkpoint import load_checkpoint, save_checkpoint
    session = ClassifierSession(model, energy_model='loihi')
    assert session.classify(_frame(), 'mono', 8).energy_preset == 'loihi'
    with pytest.raises(ValueError, match='early_exit must be an EarlyExit rule'):
        session.classify(_frame(), 'mono', 8, early_exit=True)
    with pytest.raises(ValueError, match='early_exit must be an EarlyExit rule'):
        session.classify_events([_window(50, 0)], SENSOR, 8, early_exit=True)
    path = save_checkpoint(tmp_path / 'm', model, info={'accuracy': np.float32(0.5),
                                                        'grid': np.arange(3)})
    assert load_checkpoint(path)[1]['info'] == {'accuracy': 0.5, 'grid': [0, 1, 2]}


@pytest.mark.parametrize('name', ['stdp_fmnist_n400.json', 'converted_fmnist_vgg.json'])
def test_frames_classified_as_batches_give_what_one_call_a_frame_gives(fashion_test,
                                                                       name) -> None:
    """
    classify_frames: batches through the model, the same predictions as classify per frame.

    The library had no batched call for frames (an item of the last note): a loop over a
    folder paid the per-call cost every frame.
    """
    from pathlib import Path
    path = str(Path(__file__).resolve().parents[2] / 'models' / name)
    frames, timesteps = fashion_test.images[:150], 32 if name.startswith('stdp') else 2
    session = ClassifierSession.from_checkpoint(path)
    singly = [session.classify(frame, 'mono', timesteps) for frame in frames]
    batched = ClassifierSession.from_checkpoint(path).classify_frames(
        list(frames), 'mono', timesteps, batch_size=64)
    assert len(batched) == len(frames)
    for a, b in zip(singly, batched):
        assert (a.class_id, a.spike_count, a.ops) == (b.class_id, b.spike_count, b.ops)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)  # batched float sums
    for bad in (frames[0], frames[0][:, :, None]):  # one frame is not a sequence of frames
        with pytest.raises(ValueError, match='one frame: classify'):
            ClassifierSession.from_checkpoint(path).classify_frames(bad, 'mono', timesteps)
    fresh = ClassifierSession.from_checkpoint(path)
    generated = fresh.classify_frames((frame for frame in frames[:3]), 'mono', timesteps)
    assert [p.class_id for p in generated] == [p.class_id for p in singly[:3]]
    with pytest.raises(ValueError, match='integer >= 1'):
        fresh.classify_frames(list(frames), 'mono', timesteps, batch_size=2.5)


class _Bins:
    """A profile entry stand-in at T=4 whose results by confidence give 0.9 at any share."""

    timesteps = 4
    confidence_bins = ((0.0, 1.0, 10, 9),)

    def calibrated(self, share: float, early_exit: bool = False) -> float:
        return 0.9


class _BinnedProfile:
    """A labelled profile stand-in that measured results by confidence at T=4."""

    agreement_based = False
    entries = (_Bins(),)
    model_sha256 = ''

    def params_for(self, timesteps: int):
        return None


def test_grey_frames_for_a_colour_model_get_no_calibrated_score() -> None:
    """
    An RGB model on a mono camera: each grey frame is copied to the three channels.

    No training image looked like that, so the profile's results by confidence do not describe
    it (a review: 0.92 -> 0.71 offline on grey copies, scores still "calibrated"). Colour
    frames of the same camera model are scored again.
    """
    from topspark_ros.core.converted import ConvertedConfig, ConvertedNetwork
    from topspark_ros.core.session import GREY_FOR_COLOUR
    model = ConvertedNetwork(ConvertedConfig(channels=3, widths=(4, 8), hidden=8, n_classes=4,
                                             mean=(0.5,) * 3, std=(0.25,) * 3))
    session = ClassifierSession(model, profile=_BinnedProfile(), crop='none')
    colour = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    grey = colour[:, :, 0]
    classed = session.classify(colour, 'rgb', 4)
    assert classed.class_id >= 0 and classed.calibrated_score == 0.9
    assert session.frame_note is None and session.calibration_gap(4) is None
    assert session.classify(grey, 'mono', 4).calibrated_score is None
    assert session.frame_note == GREY_FOR_COLOUR
    assert session.calibration_gap(4) == GREY_FOR_COLOUR
    assert all(p.calibrated_score is None
               for p in session.classify_frames([grey, grey], 'mono', 4))
    assert session.classify(colour, 'bgr', 4).calibrated_score == 0.9
    assert session.frame_note is None
    # A grey model takes grey frames as trained; colour ones through their luma, as trained.
    grey_model = ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=8, n_classes=4))
    grey_session = ClassifierSession(grey_model, profile=_BinnedProfile(), crop='none')
    for frame, layout in ((grey, 'mono'), (colour, 'rgb')):
        grey_session.classify(frame, layout, 4)
        assert grey_session.frame_note is None and grey_session.calibration_gap(4) is None
