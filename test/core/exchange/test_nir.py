"""NIR export, re-simulation and import (topspark_ros.core.exchange, `topspark export/import`)."""

import json
import os
from pathlib import Path
import shutil

import numpy as np
import pytest

from topspark_ros import cli
from topspark_ros.core.checkpoint import load_checkpoint, save_checkpoint
from topspark_ros.core.converted import ConvertedConfig
from topspark_ros.core.exchange.check import resimulate
from topspark_ros.core.exchange.fidelity import STATUSES
from topspark_ros.core.exchange.nir_export import export_model, export_stdp, write_nir
from topspark_ros.core.exchange.nir_import import import_graph, NirImportError
from topspark_ros.core.exchange.nir_sim import graph_metadata, NirSimulator
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
import torch

nir = pytest.importorskip('nir')

MODELS = Path(__file__).resolve().parents[3] / 'models'
CONVERTED = MODELS / 'converted_fmnist_vgg.json'
STDP = MODELS / 'stdp_fmnist_n400.json'


def _written(graph, tmp_path: Path, name: str = 'model.nir'):
    """Write ``graph`` with nir.write and read it back with nir.read."""
    return nir.read(write_nir(graph, tmp_path / name))


def _covers_every_node(graph, entries: list) -> None:
    """Assert every node but the Output appears in the fidelity entries, statuses valid."""
    reported = {e['node'] for e in entries}
    for name, node in graph.nodes.items():
        if type(node).__name__ != 'Output':
            assert name in reported, f'{name} missing from the fidelity report'
    assert {e['status'] for e in entries} <= set(STATUSES)


@pytest.mark.parametrize('pool', ['sum', 'avg'])
def test_converted_export_reports_every_node_and_resimulates(tmp_path, fashion_test, pool):
    """The shipped converted model re-simulates from its file with >= 99 % agreement."""
    model, meta = load_checkpoint(CONVERTED)
    graph, report = export_model(model, pool=pool, info=meta['info'])
    read = _written(graph, tmp_path)
    kinds = {type(n).__name__ for n in read.nodes.values()}
    assert {'Conv2d', 'Affine', 'IF', 'Flatten', 'I'} <= kinds
    assert ('SumPool2d' if pool == 'sum' else 'AvgPool2d') in kinds
    stored = graph_metadata(read)
    assert stored['family'] == 'converted' and stored['input']['mean'] == [0.2854]
    _covers_every_node(read, stored['fidelity'])
    assert stored['fidelity'] == report.to_list()
    theta = (model.net.mu() * model.params.threshold_scale).detach().numpy()
    np.testing.assert_allclose(read.nodes['layer0'].v_threshold,
                               np.full((16, 28, 28), theta[0]), rtol=1e-6)
    done = []  # the check's progress, batch by batch (the bar moved once, at the end)
    figures = resimulate(model, read, fashion_test.images[:200], fashion_test.labels[:200],
                         timesteps=2, batch_size=64, progress=done.append)
    assert done == [64, 64, 64, 8]
    assert figures['agreement'] >= 0.99
    assert abs(figures['nir_accuracy'] - figures['native_accuracy']) <= 0.01
    assert 0.0 <= figures['plain_nir_agreement'] <= 1.0


def test_stdp_export_resimulates_on_the_same_poisson_trains(tmp_path, fashion_test):
    """The shipped STDP model's graph gives the native predictions on the same spikes."""
    model, meta = load_checkpoint(STDP)
    graph, report = export_model(model, info=meta['info'])
    read = _written(graph, tmp_path)
    stored = graph_metadata(read)
    assert stored['dt_s'] == pytest.approx(1e-3) and stored['timesteps'] == 350
    _covers_every_node(read, stored['fidelity'])
    statuses = {(e['kind'], e['status']) for e in stored['fidelity']}
    assert ('refractory period', 'not representable') in statuses
    assert ('Input', 'approximate') in statuses
    assert isinstance(read.nodes['inh'], nir.LIF) and ('inh_delay', 'inhibition') in read.edges
    np.testing.assert_allclose(read.nodes['exc'].v_threshold,
                               model.params.v_thresh_mv + model.theta, rtol=1e-6)
    figures = resimulate(model, read, fashion_test.images[:32], fashion_test.labels[:32],
                         timesteps=80, seed=3)
    assert figures['agreement'] >= 0.99
    assert 'rate_input_agreement' in figures


def test_event_models_say_their_input_is_made_from_events(tmp_path):
    """
    The event STDP model's export described its input as Poisson encoding (a review).

    Its spikes are made from events, deterministically: the metadata says so and carries the
    event encoding (window bins, polarity, sensor, region), as the converted event model's does.
    """
    for name, kind in (('stdp_nmnist_synth_n400', 'events'),
                       ('converted_nmnist_synth_vgg', 'event frames')):
        model, meta = load_checkpoint(MODELS / f'{name}.json')
        graph, _ = export_model(model, info=meta['info'])
        stored = graph_metadata(_written(graph, tmp_path, f'{name}.nir'))
        assert stored['input']['kind'] == kind
        assert stored['input']['encoding'] == model.event_encoding.to_dict()
        rows = [e for e in stored['fidelity'] if e['node'] == 'input']
        assert not any('Poisson' in e['reason'] for e in rows), rows
    model, meta = load_checkpoint(STDP)  # a frames model: Poisson, as before
    stored = graph_metadata(_written(export_model(model, info=meta['info'])[0], tmp_path))
    assert stored['input']['kind'] == 'poisson' and 'encoding' not in stored['input']


def test_stdp_direct_inhibition_is_a_recurrent_edge_and_exact(tmp_path, fashion_test):
    """'direct' inhibition exports as exc -> Delay -> Affine -> exc; spike counts match."""
    from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
    from topspark_ros.core.stdp.encoding import poisson_events

    shipped, _ = load_checkpoint(STDP)
    config = STDPConfig.from_dict({**shipped.config.to_dict(), 'inhibition': 'direct'})
    model = DiehlCookNetwork(config, shipped.params, weights=shipped.weights,
                             theta=shipped.theta, readout=shipped.readout)
    graph, _ = export_stdp(model)
    read = _written(graph, tmp_path)
    assert 'inh' not in read.nodes
    assert {('exc', 'exc_delay'), ('exc_delay', 'inhibition'), ('inhibition', 'exc')} \
        <= set(read.edges)
    images = fashion_test.images[:16]
    events = poisson_events(images, 60, model.params.input_rate_hz, config.dt_ms,
                            np.arange(16, dtype=np.uint64))
    native = model.infer(events, timesteps=60)
    simulator = NirSimulator(read)
    simulator.run(events.to_dense().astype(np.float32), 60, batch=16)
    np.testing.assert_array_equal(simulator.spike_counts['exc'], native.evidence)


def test_cli_export_prints_the_report_and_checks(tmp_path, fashion_dir, capsys):
    """`topspark export --check` prints every node's fidelity and the agreement."""
    out = tmp_path / 'vgg.nir'
    assert cli.main(['export', '-m', str(CONVERTED), '--format', 'nir', '-o', str(out),
                     '--check', '64', '--data', f'idx:{fashion_dir}', '-q']) == 0
    text = capsys.readouterr().out
    assert 'approximate  layer0' in text and 'not representable' in text
    assert 'check_agreement: 1' in text and 'check_native_accuracy' in text
    assert cli.main(['export', '-m', str(CONVERTED), '-o', str(out), '--json', '-q',
                     '--overwrite']) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # Entries, not nodes (they were nodes_<status>: 18 of 11 nodes in the STDP graph).
    assert result['fidelity_approximate'] == 4 and 'nodes_approximate' not in result
    assert sum(result[f'fidelity_{s.replace(" ", "_")}'] for s in STATUSES) == len(
        result['fidelity']) >= result['nodes']
    assert nir.read(out).nodes['output_integrator'].r.shape == (10,)


def test_an_stdp_export_says_what_plain_nir_readers_run_and_pool_is_not_its(tmp_path, capsys):
    """`--pool avg` on an STDP model was taken without a word; plain readers disagree 24 %."""
    stdp = str(MODELS / 'stdp_fmnist_n400.json')
    out = str(tmp_path / 's.nir')
    assert cli.main(['export', '-m', stdp, '-o', out, '-q']) == 0
    err = capsys.readouterr().err
    assert 'a reader of plain NIR' in err and '--check N' in err and '--pool' not in err
    assert cli.main(['export', '-m', stdp, '-o', out, '-q', '--overwrite', '--pool', 'avg']) == 0
    assert 'note: --pool is of the converted family' in capsys.readouterr().err
    assert cli.main(['export', '-m', str(CONVERTED), '-o', str(tmp_path / 'c.nir'), '-q',
                     '--pool', 'avg']) == 0
    assert 'note' not in capsys.readouterr().err


def _cli_json(argv: list, capsys) -> tuple:
    """Run ``topspark argv --json -q``; return ``(exit code, result or None, stderr)``."""
    code = cli.main(argv + ['--json', '-q'])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 and lines else None), captured.err


def test_an_stdp_model_exports_at_a_reduced_t_with_its_profiles_parameters(
        tmp_path, fashion_dir, capsys):
    """
    The graph was always the full-T network: at T=8 it ran at chance (a review: 11 %).

    ``--params-from PROFILE -T 8`` exports the thresholds and input rate enhanced for T=8, and
    ``--check`` runs the model with them too.
    """
    profile = MODELS / 'stdp_fmnist_n400.profile.yaml'
    check = ['--check', '100', '--data', f'idx:{fashion_dir}', '-T', '8']
    code, plain, err = _cli_json(['export', '-m', str(STDP), '-o', str(tmp_path / 'a.nir'),
                                  *check], capsys)
    assert code == 0, err
    code, tuned, err = _cli_json(['export', '-m', str(STDP), '-o', str(tmp_path / 'b.nir'),
                                  '--params-from', str(profile), *check], capsys)
    assert code == 0, err
    # (chance is 0.1; the profile measured 0.73 at T=8 on 10 000 images; 100 drawn here)
    assert plain['check_native_accuracy'] < 0.3 < 0.5 < tuned['check_native_accuracy']
    assert tuned['check_agreement'] == 1.0 and tuned['enhanced_params']['theta_scale'] < 1
    metadata = graph_metadata(nir.read(tmp_path / 'b.nir'))
    assert metadata['input']['rate_hz'] == tuned['enhanced_params']['input_rate_hz']
    assert metadata['timesteps'] == 8  # the T its parameters are for, not the model's 350
    code, _, err = _cli_json(['export', '-m', str(STDP), '-o', str(tmp_path / 'c.nir'),
                              '--params-from', str(profile)], capsys)
    assert code == 2 and 'needs -T' in err
    other = MODELS / 'converted_fmnist_vgg.profile.yaml'
    code, _, err = _cli_json(['export', '-m', str(STDP), '-o', str(tmp_path / 'c.nir'),
                              '--params-from', str(other), '-T', '2'], capsys)
    assert code == 2 and 'profiles another model' in err
    assert not (tmp_path / 'c.nir').exists()


def test_export_refuses_a_check_it_cannot_run_and_the_model_itself_before_writing(
        tmp_path, capsys):
    """--check's data was read after the file was written; -o the model's .json replaced it."""
    out = tmp_path / 'g.nir'
    for extra in (['--data', 'no-such-set'], ['--data', f'folder:{tmp_path / "missing"}']):
        code, _, err = _cli_json(['export', '-m', str(STDP), '-o', str(out), '--check', '5',
                                  *extra], capsys)
        assert code != 0 and 'error' in err and not out.exists(), err
    events = MODELS / 'converted_nmnist_synth_vgg.json'
    code, _, err = _cli_json(['export', '-m', str(events), '-o', str(out), '--check', '5'],
                             capsys)
    assert code == 2 and 'takes events' in err and not out.exists()
    model = tmp_path / 'm.json'
    shutil.copy(STDP, model)
    shutil.copy(STDP.parent / json.loads(STDP.read_text())['tensors']['file'], tmp_path)
    tensors = tmp_path / json.loads(STDP.read_text())['tensors']['file']
    profile = tmp_path / 'p.yaml'
    shutil.copy(MODELS / 'stdp_fmnist_n400.profile.yaml', profile)
    # None a graph's name (-o y.json wrote HDF5); nor a bare suffix (-o .nir: a hidden file).
    for target in (model, tensors, profile, tmp_path / '.nir', tmp_path / '.H5'):
        code, _, err = _cli_json(['export', '-m', str(model), '-o', str(target), '--overwrite',
                                  '--params-from', str(profile), '-T', '8'], capsys)
        assert code == 2 and err.strip().endswith(
            'a NIR graph is an HDF5 file: name it NAME.nir or NAME.h5 or NAME.hdf5'), err
    assert not (tmp_path / '.nir').exists()
    assert load_checkpoint(model)[0].n_classes == 10  # still the model, tensors whole
    graph = tmp_path / 'm.nir'  # a graph's name that is an input: refused as such
    graph.symlink_to(model)
    code, _, err = _cli_json(['export', '-m', str(model), '-o', str(graph), '--overwrite'],
                             capsys)
    assert code == 2 and 'same file as' in err, err
    assert load_checkpoint(model)[0].n_classes == 10
# --- import ------------------------------------------------------------------------------


def _snntorch_style_dense(rng, beta=0.9, dt=1e-4):
    """Return a dense LIF net as snnTorch's export writes it (tau = dt/(1-beta), r = tau/dt)."""
    w1 = rng.normal(0, 0.15, (32, 64)).astype(np.float32)
    w2 = rng.normal(0, 0.4, (10, 32)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 32).astype(np.float32)

    def lif(n):
        tau = np.full(n, dt / (1 - beta), np.float32)
        return nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(n, np.float32),
                       v_threshold=np.ones(n, np.float32), v_reset=np.zeros(n, np.float32))

    graph = nir.NIRGraph(
        nodes={'input': nir.Input(input_type=np.array([64])),
               'fc1': nir.Affine(weight=w1, bias=b1), 'lif1': lif(32),
               'fc2': nir.Affine(weight=w2, bias=np.zeros(10, np.float32)), 'lif2': lif(10),
               'output': nir.Output(output_type=np.array([10]))},
        edges=[('input', 'fc1'), ('fc1', 'lif1'), ('lif1', 'fc2'), ('fc2', 'lif2'),
               ('lif2', 'output')])
    return graph, (w1, b1, w2)


def test_import_snntorch_style_lif_matches_leaky_with_subtract_reset(tmp_path):
    """A Leaky net (beta 0.9, reset by subtraction) runs the same after import."""
    rng = np.random.default_rng(0)
    graph, (w1, b1, w2) = _snntorch_style_dense(rng)
    model, report, _ = import_graph(_written(graph, tmp_path))
    assert model.config.arch == 'graph' and model.config.leak == pytest.approx((0.9, 0.9))
    assert model.input_spec.shape == (8, 8)
    images = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    result = model.infer(images, timesteps=12)
    # snnTorch Leaky, reset_mechanism='subtract': mem = beta mem + in - spk thr (thr 1).
    x = images.reshape(20, 64).astype(np.float64) / 255.0
    m1, m2, counts = np.zeros((20, 32)), np.zeros((20, 10)), np.zeros((20, 10))
    for _ in range(12):
        m1 = 0.9 * m1 + x @ w1.T + b1
        s1 = (m1 >= 1.0).astype(float)
        m1 -= s1
        m2 = 0.9 * m2 + s1 @ w2.T
        s2 = (m2 >= 1.0).astype(float)
        m2 -= s2
        counts += s2
    np.testing.assert_allclose(result.evidence, counts, atol=1e-9)
    assert {e.node for e in report.entries} >= {'fc1', 'lif1', 'fc2', 'lif2', 'input'}


def test_a_leaky_model_exports_as_lif_and_imports_back_the_same(tmp_path):
    """A leaky layer was exported as IF, its leak lost (a review: 83 % agreement at T=8)."""
    rng = np.random.default_rng(0)
    graph, _ = _snntorch_style_dense(rng, beta=0.8, dt=1e-3)
    model, _, _ = import_graph(_written(graph, tmp_path), lif_dt_s=1e-3)
    exported, report = export_model(model)
    assert not [e for e in report.entries if e.status == 'not representable'
                and e.node.startswith('layer')]
    # One entry per node and aspect: 'layer0 (LIF)' was listed faithful and approximate.
    pairs = [(e.node, e.kind) for e in report.entries]
    assert len(pairs) == len(set(pairs)) and ('layer0', 'reset, start, firing') in pairs
    assert 'NIR IF' not in str(report.to_list())
    read = _written(exported, tmp_path, 'again.nir')
    lif = [n for n in read.nodes.values() if type(n).__name__ == 'LIF']
    assert len(lif) == 2 and all(np.allclose(n.v_leak, 0.0) for n in lif)
    again, _, _ = import_graph(read)
    assert again.config.leak == pytest.approx(model.config.leak)
    images = rng.integers(0, 256, (50, 8, 8), dtype=np.uint8)
    np.testing.assert_allclose(again.infer(images, timesteps=8).evidence,
                               model.infer(images, timesteps=8).evidence, atol=1e-5)
    figures = resimulate(model, read, images, np.zeros(50, np.int64), 8)
    assert figures['agreement'] == 1.0 and figures['plain_nir_agreement'] > 0.5


def test_import_says_when_lif_dt_is_not_the_step_the_graph_was_written_for(tmp_path, capsys):
    """--lif-dt of the first import, given again, silently changed the leaks (a review)."""
    graph, _ = _snntorch_style_dense(np.random.default_rng(0), beta=0.8, dt=1e-3)
    model, _, _ = import_graph(_written(graph, tmp_path), lif_dt_s=1e-3)
    exported = write_nir(export_model(model)[0], tmp_path / 'again.nir')
    out = str(tmp_path / 'm.json')
    assert cli.main(['import', str(exported), '-o', out, '-q']) == 0
    assert 'note' not in capsys.readouterr().err
    assert load_checkpoint(out)[0].config.leak == pytest.approx(model.config.leak)
    assert cli.main(['import', str(exported), '-o', out, '--overwrite', '-q', '--lif-dt',
                     '2e-4']) == 0
    assert 'written for LIF steps of 0.0001 s' in capsys.readouterr().err


def test_import_conv_sum_pool_and_per_channel_thresholds_agrees_with_simulator(tmp_path):
    """A conv IF net (Sinabs-like: SumPool2d, thresholds per channel) = the NIR simulator."""
    rng = np.random.default_rng(1)
    th = np.repeat(np.array([0.5, 1.0, 1.5, 2.0], np.float32)[:, None, None], 64,
                   axis=1).reshape(4, 8, 8)
    nodes = {
        'input': nir.Input(input_type=np.array([1, 8, 8])),
        'conv': nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 1, (4, 1, 3, 3))
                           .astype(np.float32), stride=1, padding=1, dilation=1, groups=1,
                           bias=np.zeros(4, np.float32)),
        'if1': nir.IF(r=np.ones((4, 8, 8), np.float32), v_threshold=th),
        'pool': nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        'flat': nir.Flatten(input_type={'input': np.array([4, 4, 4])}, start_dim=0),
        'fc': nir.Affine(weight=rng.normal(0, 0.5, (3, 64)).astype(np.float32),
                         bias=np.zeros(3, np.float32)),
        'integrator': nir.I(r=np.ones(3, np.float32)),
        'output': nir.Output(output_type=np.array([3])),
    }
    edges = [('input', 'conv'), ('conv', 'if1'), ('if1', 'pool'), ('pool', 'flat'),
             ('flat', 'fc'), ('fc', 'integrator'), ('integrator', 'output')]
    meta = {'topspark': json.dumps({'neurons': {'if1': {'reset': 'subtract', 'fire': '>='}}})}
    graph = _written(nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta), tmp_path)
    model, report, _ = import_graph(graph)
    assert [e.node for e in report.entries if e.status != 'faithful'] == ['input']
    images = rng.integers(0, 256, (10, 8, 8), dtype=np.uint8)
    result = model.infer(images, timesteps=6)
    reference = NirSimulator(graph).run(images[:, None].astype(np.float32) / 255.0, 6)
    np.testing.assert_allclose(result.evidence, reference['output'], rtol=1e-5, atol=1e-5)


def test_export_import_round_trip_of_the_shipped_model(tmp_path, fashion_test):
    """Converted -> NIR -> converted gives the same evidence (to float rounding)."""
    model, meta = load_checkpoint(CONVERTED)
    graph, _ = export_model(model, info=meta['info'])
    imported, report, info = import_graph(_written(graph, tmp_path))
    assert report.counts()['approximate'] == 0 and info['class_names'][0] == 'T-shirt/top'
    images = fashion_test.images[:64]
    a = model.infer(images, timesteps=4)
    b = imported.infer(images, timesteps=4)
    np.testing.assert_array_equal(a.predicted, b.predicted)
    np.testing.assert_allclose(a.evidence, b.evidence, atol=1e-4)


@pytest.mark.parametrize('threshold_scale', [1.0, 0.8])
def test_a_resnet_whose_thresholds_are_not_1_exports_and_imports_back_the_same(
        tmp_path, threshold_scale):
    """Its shortcuts' Scale is the source's threshold: refused once shortcuts had to carry 1."""
    from topspark_ros.core.converted import ConvertedNetwork, ConvertedParams
    torch.manual_seed(0)
    config = ConvertedConfig(arch='resnet', height=8, width=8, widths=(4, 8), hidden=8,
                             mu_init=1.5, seed=3)
    model = ConvertedNetwork(config, ConvertedParams(threshold_scale=threshold_scale,
                                                     v_init_frac=0.5))
    graph, _ = export_model(model)
    imported, _, _ = import_graph(_written(graph, tmp_path))
    images = np.random.default_rng(1).integers(0, 256, (32, 1, 8, 8), dtype=np.uint8)
    a, b = model.infer(images, timesteps=16), imported.infer(images, timesteps=16)
    assert np.abs(a.evidence).max() > 0
    np.testing.assert_allclose(a.evidence, b.evidence, atol=1e-4)


@pytest.mark.parametrize('kind', ['CubaLIF', 'LI', 'recurrent'])
def test_import_refuses_unsupported_nodes_in_one_line_naming_the_node(tmp_path, kind):
    """Anything the converted family cannot hold is a one-line error with the node's name."""
    n = 4
    w = np.eye(n, dtype=np.float32)
    ones, zeros = np.ones(n, np.float32), np.zeros(n, np.float32)
    neuron = {'CubaLIF': nir.CubaLIF(tau_syn=ones, tau_mem=ones, r=ones, v_leak=zeros,
                                     v_threshold=ones),
              'LI': nir.LI(tau=ones, r=ones, v_leak=zeros),
              'recurrent': nir.IF(r=ones, v_threshold=ones)}[kind]
    nodes = {'input': nir.Input(input_type=np.array([n])),
             'fc': nir.Affine(weight=w, bias=zeros), 'odd_neuron': neuron,
             'output': nir.Output(output_type=np.array([n]))}
    edges = [('input', 'fc'), ('fc', 'odd_neuron'), ('odd_neuron', 'output')]
    if kind == 'recurrent':
        nodes['back'] = nir.Linear(weight=w)
        edges += [('odd_neuron', 'back'), ('back', 'odd_neuron')]
    with pytest.raises(NirImportError) as err:
        import_graph(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    message = str(err.value)
    assert "'odd_neuron'" in message and '\n' not in message


def test_cli_import_writes_a_checkpoint_the_classifier_loads(tmp_path, capsys):
    """`topspark import` makes a converted checkpoint; a bad graph is one error line."""
    from topspark_ros.core.session import ClassifierSession

    graph, _ = _snntorch_style_dense(np.random.default_rng(2))
    source = write_nir(graph, tmp_path / 'snn.nir')
    target = tmp_path / 'imported.json'
    assert cli.main(['import', str(source), '-o', str(target), '--class-names',
                     ','.join('abcdefghij'), '-T', '16', '--json']) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['checkpoint'] == str(target) and result['input_shape'] == [8, 8]
    session = ClassifierSession.from_checkpoint(str(target))
    assert session.class_names[2] == 'c'
    model, meta = load_checkpoint(target)
    assert meta['info']['timesteps'] == 16 and meta['family'] == 'converted'
    assert model.infer(np.zeros((1, 8, 8), np.uint8), timesteps=3).predicted.shape == (1,)
    ones = np.ones(4, np.float32)
    bad = nir.NIRGraph(nodes={'input': nir.Input(input_type=np.array([4])),
                              'syn': nir.CubaLIF(tau_syn=ones, tau_mem=ones, r=ones,
                                                 v_leak=0 * ones, v_threshold=ones),
                              'output': nir.Output(output_type=np.array([4]))},
                       edges=[('input', 'syn'), ('syn', 'output')])
    assert cli.main(['import', str(write_nir(bad, tmp_path / 'bad.nir')), '-o',
                     str(tmp_path / 'x.json')]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith('topspark: error:') and "'syn'" in err and '\n' not in err


@pytest.mark.parametrize('meta', [{'format_version': 2}, {'format': 'other', 'format_version': 1},
                                  'not json'])
def test_import_refuses_metadata_of_another_version_naming_the_file(tmp_path, capsys, meta):
    """A newer version's export (format_version 2) was imported as this one's (a review)."""
    model, info = load_checkpoint(CONVERTED)
    graph, _ = export_model(model, info=info['info'])
    written = json.loads(graph.metadata['topspark'])
    assert (written['format'], written['format_version']) == ('topspark-nir', 1)
    graph.metadata['topspark'] = meta if isinstance(meta, str) else json.dumps({**written, **meta})
    path = write_nir(graph, tmp_path / 'newer.nir')
    assert cli.main(['import', str(path), '-o', str(tmp_path / 'x.json'), '-q']) == 1
    err = capsys.readouterr().err.strip()
    assert 'newer.nir' in err and 'metadata' in err and '\n' not in err, err
    assert not (tmp_path / 'x.json').exists()


@pytest.mark.parametrize('meta, problem', [
    ({'neurons': []}, 'neurons must be an object'),
    ({'neurons': {'if1': 3}}, 'neurons.if1 must be an object'),
    ({'neurons': {'if1': {'v_init': 'half'}}}, 'neurons.if1.v_init must be a number'),
    ({'neurons': {'if1': {'refractory_steps': [2]}}}, 'refractory_steps must be a number'),
    ({'input': 'grey'}, 'input must be an object'),
    ({'input': {'mean': 'zero'}}, 'input.mean must be a list of numbers'),
    ({'input': {'encoding': 'events'}}, 'input.encoding must be an object'),
    ({'neurons': None}, 'neurons must be an object'),
    ({'input': None}, 'input must be an object'),
    ({'neurons': {'if1': {'v_init': []}}}, 'non-empty list of numbers'),
    ({'dt_s': [0.001]}, 'dt_s must be a positive number or null'),
    ({'dt_s': 0}, 'dt_s must be a positive number or null'),
    ({'timesteps': '16'}, 'timesteps must be an integer >= 1 or null'),
    ({'timesteps': 16.5}, 'timesteps must be an integer >= 1 or null'),
    ({'timesteps': -3}, 'timesteps must be an integer >= 1 or null'),
    ({'class_names': 'abc'}, 'class_names must be a list of strings'),
    ({'class_names': ['a', 2]}, 'class_names must be a list of strings'),
])
def test_import_refuses_metadata_of_the_wrong_types_in_one_line(
        tmp_path, capsys, meta, problem):
    """
    Metadata keys of another type are refused, saying which.

    Each was a traceback (AttributeError, TypeError) or, for a string of class names, taken
    as one name per letter (a review).
    """
    model, info = load_checkpoint(CONVERTED)
    graph, _ = export_model(model, info=info['info'])
    written = json.loads(graph.metadata['topspark'])
    graph.metadata['topspark'] = json.dumps({**written, **meta})
    path = write_nir(graph, tmp_path / 'typed.nir')
    assert cli.main(['import', str(path), '-o', str(tmp_path / 'x.json'), '-q']) == 1
    err = capsys.readouterr().err.strip()
    assert 'typed.nir' in err and problem in err and '\n' not in err, err
    assert not (tmp_path / 'x.json').exists()


def test_leak_and_layers_leave_existing_checkpoints_unchanged():
    """The new config fields are absent from built-in architectures' checkpoints."""
    stored = json.loads(CONVERTED.read_text())['model']['config']
    assert ConvertedConfig.from_dict(stored).to_dict() == stored
    with pytest.raises(ValueError, match='leak'):
        ConvertedConfig(leak=(1.5,))
    with pytest.raises(ValueError, match='graph'):
        ConvertedConfig(arch='vgg', layers=({'synapses': []},))


def test_a_full_disk_is_an_os_error_and_leaves_nothing(tmp_path):
    """HDF5 writing into the file crashed on a full disk (exit 139, 42 tracebacks; a review)."""
    import subprocess
    import sys

    target = tmp_path / 'out' / 'model.nir'
    code = '\n'.join([  # a file size limit of 20 kB stands for a full disk
        'import resource, signal, sys',
        'signal.signal(signal.SIGXFSZ, signal.SIG_IGN)',
        'import numpy as np, nir',
        'from topspark_ros.core.exchange.nir_export import write_nir',
        'weight = np.random.default_rng(0).normal(size=(512, 64))',
        "graph = nir.NIRGraph(nodes={'input': nir.Input(input_type=np.array([64])),",
        "                            'fc': nir.Linear(weight=weight),",
        "                            'output': nir.Output(output_type=np.array([512]))},",
        "                     edges=[('input', 'fc'), ('fc', 'output')])",
        'resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))',
        'try:',
        '    write_nir(graph, sys.argv[1])',
        'except OSError as exc:',
        "    print('error', exc.errno, exc)",
    ])
    done = subprocess.run([sys.executable, '-c', code, str(target)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and 'Traceback' not in done.stderr, done.stderr[-2000:]
    assert done.stdout.startswith('error 27 '), done.stdout  # EFBIG, an OSError
    assert os.listdir(target.parent) == []  # no temporary left
    # Without the limit the same graph is written whole and reads back.
    graph = nir.NIRGraph(nodes={'input': nir.Input(input_type=np.array([3])),
                                'fc': nir.Linear(weight=np.arange(6.0).reshape(2, 3)),
                                'output': nir.Output(output_type=np.array([2]))},
                         edges=[('input', 'fc'), ('fc', 'output')])
    np.testing.assert_array_equal(_written(graph, target.parent).nodes['fc'].weight,
                                  np.arange(6.0).reshape(2, 3))
    assert os.listdir(target.parent) == ['model.nir']


# --- what a review of export and import found ----------------------------------------------


@pytest.mark.parametrize('fault', ['nan weight', 'inf threshold', 'nan r', 'tau 0'])
def test_import_refuses_parameters_no_model_can_hold_and_keeps_the_model_there(
        tmp_path, capsys, fault):
    """
    Parameters of NaN or infinity were imported, exit 0, into a checkpoint no command loads.

    With --overwrite the working model at -o was replaced by it; tau = 0 ended in a
    ZeroDivisionError's traceback (a review). Now one line naming the node, nothing written.
    """
    graph, _ = _snntorch_style_dense(np.random.default_rng(3))
    node, what = {'nan weight': ('fc1', 'weight'), 'inf threshold': ('lif1', 'v_threshold'),
                  'nan r': ('lif2', 'r'), 'tau 0': ('lif1', 'tau')}[fault]
    values = np.array(getattr(graph.nodes[node], what), np.float32)
    values.reshape(-1)[0] = {'nan weight': np.nan, 'inf threshold': np.inf, 'nan r': np.nan,
                             'tau 0': 0.0}[fault]
    if fault == 'tau 0':
        values[:] = 0.0
    setattr(graph.nodes[node], what, values)
    source = write_nir(graph, tmp_path / 'bad.nir')
    target = tmp_path / 'model.json'
    good, _ = _snntorch_style_dense(np.random.default_rng(4))
    assert cli.main(['import', str(write_nir(good, tmp_path / 'good.nir')), '-o', str(target),
                     '-q']) == 0
    before = target.read_bytes()
    capsys.readouterr()
    assert cli.main(['import', str(source), '-o', str(target), '--overwrite', '-q']) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith('topspark: error:') and f"node '{node}'" in err, err
    assert '\n' not in err and 'Traceback' not in err
    assert what in err or fault == 'tau 0'
    assert target.read_bytes() == before
    assert load_checkpoint(target)[0].input_spec.shape == (8, 8)  # still loads


def test_a_checkpoint_of_non_finite_tensors_is_not_written(tmp_path):
    """Every load refuses NaN or infinite tensors: the save now does too, writing nothing."""
    from topspark_ros.core.checkpoint import CheckpointError, save_checkpoint

    model, _ = load_checkpoint(CONVERTED)
    with torch.no_grad():
        next(iter(model.net.parameters())).view(-1)[0] = float('nan')
    with pytest.raises(CheckpointError, match='holds NaN or infinite values'):
        save_checkpoint(tmp_path / 'm.json', model)
    assert list(tmp_path.iterdir()) == []


def test_an_event_model_exports_and_imports_back_the_same(tmp_path, capsys):
    """
    `topspark import` of the package's own event model refused its 2 input channels.

    The metadata holds its event encoding; the import rebuilds it, and the data the model
    was trained on (the shipped models record only `dataset`: the import then measured
    nothing). A 2-channel graph without that metadata is refused, saying what is missing.
    """
    from topspark_ros.core.inputs import EventFrames

    events = MODELS / 'converted_nmnist_synth_vgg.json'
    graph = tmp_path / 'events.nir'
    target = tmp_path / 'imported.json'
    assert cli.main(['export', '-m', str(events), '-o', str(graph), '-q']) == 0
    assert cli.main(['import', str(graph), '-o', str(target), '-q']) == 0
    model, _ = load_checkpoint(events)
    imported, meta = load_checkpoint(target)
    assert imported.event_encoding == model.event_encoding
    assert meta['info']['data'] == 'nmnist-synth'
    counts = np.random.default_rng(0).poisson(
        0.3, (6, 4, 2) + model.input_spec.shape[-2:]).astype(np.float32)
    want = model.infer(EventFrames(counts), timesteps=4)
    got = imported.infer(EventFrames(counts), timesteps=4)
    np.testing.assert_allclose(got.evidence, want.evidence, atol=1e-5)
    assert np.abs(want.evidence).sum() > 0
    bare = nir.read(graph)
    bare.metadata = {}
    capsys.readouterr()
    assert cli.main(['import', str(write_nir(bare, tmp_path / 'bare.nir')), '-o',
                     str(tmp_path / 'x.json'), '-q']) == 1
    err = capsys.readouterr().err
    assert '2 input channels' in err and 'input.encoding' in err, err


@pytest.mark.parametrize('option, said', [
    (['--mean', '0.1,0.2'], '--mean: 2 values'), (['--std', '0'], 'argument --std'),
    (['--std=-1'], 'argument --std'), (['--mean', 'nan'], 'argument --mean'),
    (['--class-names', 'a,b,c'], '--class-names: 3 class names')])
def test_import_options_of_the_wrong_kind_are_usage_errors(tmp_path, capsys, option, said):
    """They were blamed on the graph (exit 1), or failed as JSON after the import (a review)."""
    graph, _ = _snntorch_style_dense(np.random.default_rng(5))
    source = write_nir(graph, tmp_path / 'g.nir')
    try:  # (argparse's own refusals exit from the parser)
        code = cli.main(['import', str(source), '-o', str(tmp_path / 'm.json'), '-q', *option])
    except SystemExit as exited:
        code = exited.code
    assert code == 2
    err = capsys.readouterr().err
    assert said in err and 'the graph does not map' not in err, err
    assert not (tmp_path / 'm.json').exists()


def test_the_simulator_reads_a_graph_without_metadata_at_the_imports_step(tmp_path):
    """It ran such graphs at 1 s a step, the import at 1e-4 s (a review: 22 % agreement)."""
    from topspark_ros.core.exchange.nir_import import DEFAULT_LIF_DT_S

    graph, _ = _snntorch_style_dense(np.random.default_rng(6))
    read = _written(graph, tmp_path)
    assert NirSimulator(read).dt == DEFAULT_LIF_DT_S == 1e-4
    assert NirSimulator(read, dt=1e-3).dt == 1e-3
    model, _, _ = import_graph(read)
    images = np.random.default_rng(7).integers(0, 256, (40, 8, 8), dtype=np.uint8)
    native = model.infer(images, timesteps=10)
    # The graph as written (reset to v_reset, not by subtraction): most predictions agree,
    # and the leak is the import's (at 1 s a step forward Euler diverged: 22 % agreement).
    plain = NirSimulator(read).run(images.reshape(40, 64).astype(np.float32) / 255.0, 10)
    agree = np.mean(plain['output'].argmax(1) == native.predicted)
    at_1s = NirSimulator(read, dt=1.0).run(images.reshape(40, 64).astype(np.float32) / 255.0,
                                           10)
    assert agree > 0.5 and agree > np.mean(at_1s['output'].argmax(1) == native.predicted)


def test_unreadable_graphs_say_which_node_or_key_is_wrong(tmp_path, capsys):
    """An unknown node type said "(AssertionError)"; a number as metadata was a traceback."""
    import h5py

    graph, _ = _snntorch_style_dense(np.random.default_rng(8))
    path = write_nir(graph, tmp_path / 'odd.nir')
    with h5py.File(path, 'r+') as f:
        del f['node/nodes/lif1/type']
        f['node/nodes/lif1/type'] = b'Foo'
    assert cli.main(['import', str(path), '-o', str(tmp_path / 'x.json'), '-q']) == 1
    err = capsys.readouterr().err.strip()
    assert "node 'lif1': type 'Foo' is not a NIR node type" in err and '\n' not in err, err
    path = write_nir(graph, tmp_path / 'meta.nir')
    with h5py.File(path, 'r+') as f:
        f.require_group('node/metadata')['topspark'] = 5
    assert cli.main(['import', str(path), '-o', str(tmp_path / 'x.json'), '-q']) == 1
    err = capsys.readouterr().err.strip()
    assert 'meta.nir' in err and 'not a JSON string' in err and '\n' not in err, err


def test_the_stdp_export_says_its_neurons_fire_at_equality(tmp_path):
    """The converted export said so (approximate); the STDP one called its LIFs faithful."""
    model, meta = load_checkpoint(STDP)
    _, report = export_model(model, info=meta['info'])
    rules = {e.node: e for e in report.entries if e.kind == 'firing rule'}
    assert set(rules) == {'exc', 'inh'}
    assert all(e.status == 'approximate' and '>=' in e.reason for e in rules.values())


def test_check_measures_a_seeded_sample_of_the_test_images_not_the_first(
        tmp_path, fashion_dir, fashion_test, monkeypatch, capsys):
    """The first N of a folder or a bag are its first class or two (a review: 4 of 5 'bar')."""
    from topspark_ros.core.data.dataset import split_indices
    from topspark_ros.core.exchange import check

    seen = []

    def resimulated(model, graph, images, labels, *args, **kwargs):
        seen.append(labels)
        return {'agreement': 1.0, 'no_class': 0.0, 'agreement_with_a_class': 1.0}
    monkeypatch.setattr(check, 'resimulate', resimulated)
    assert cli.main(['export', '-m', str(CONVERTED), '-o', str(tmp_path / 'g.nir'), '--check',
                     '50', '--data', f'idx:{fashion_dir}', '--seed', '3', '-q']) == 0
    (idx,) = split_indices(len(fashion_test.labels), [50], 3)
    assert np.array_equal(seen[0], fashion_test.labels[idx])
    assert not np.array_equal(seen[0], fashion_test.labels[:50])


def _residual_graph(threshold: float, scale: bool):
    """Return Conv2d, IF, Conv2d, IF with an identity shortcut (an edge or a Scale), Affine."""
    rng = np.random.default_rng(0)
    c, h, n_out = 4, 8, 10

    def weights(*shape):
        return rng.normal(0, 0.3, shape).astype(np.float32)

    def neuron():
        return nir.IF(r=np.ones((c, h, h), np.float32), v_reset=np.zeros((c, h, h), np.float32),
                      v_threshold=np.full((c, h, h), threshold, np.float32))

    def conv(cin):
        return nir.Conv2d(input_shape=(h, h), weight=weights(c, cin, 3, 3), stride=1, padding=1,
                          dilation=1, groups=1, bias=weights(c))
    nodes = {'input': nir.Input(input_type=np.array([3, h, h])), 'conv1': conv(3),
             'if1': neuron(), 'conv2': conv(c), 'if2': neuron(),
             'flat': nir.Flatten(input_type={'input': np.array([c, h, h])}, start_dim=0),
             'fc': nir.Affine(weight=weights(n_out, c * h * h), bias=weights(n_out)),
             'out_i': nir.I(r=np.ones(n_out, np.float32)),
             'output': nir.Output(output_type=np.array([n_out]))}
    edges = [('input', 'conv1'), ('conv1', 'if1'), ('if1', 'conv2'), ('conv2', 'if2'),
             ('if2', 'flat'), ('flat', 'fc'), ('fc', 'out_i'), ('out_i', 'output')]
    if scale:
        nodes['skip'] = nir.Scale(scale=np.ones((c, h, h), np.float32))
        edges += [('if1', 'skip'), ('skip', 'if2')]
    else:
        edges += [('if1', 'if2')]
    neurons = {n: {'reset': 'subtract', 'fire': '>='} for n in ('if1', 'if2')}
    return nir.NIRGraph(nodes=nodes, edges=edges,
                        metadata={'topspark': json.dumps({'neurons': neurons})})


@pytest.mark.parametrize('threshold', [1.0, 2.0, 0.7])
@pytest.mark.parametrize('scale', [False, True])
def test_a_residual_graph_imports_whatever_its_thresholds(tmp_path, threshold, scale):
    """
    A shortcut from a layer of threshold 2 was refused: its spikes carried 2 natively.

    The layer takes the per-neuron form (its spikes carry 1, as NIR's); the model equals the
    NIR simulator's run of the graph.
    """
    graph = _written(_residual_graph(threshold, scale), tmp_path)
    model, report, _ = import_graph(graph)
    assert [e.node for e in report.entries if e.status != 'faithful'] == ['input']
    images = np.random.default_rng(1).integers(0, 256, (16, 3, 8, 8), dtype=np.uint8)
    result = model.infer(images, timesteps=6)
    reference = NirSimulator(graph).run(images.astype(np.float32) / 255.0, 6)
    assert result.evidence.std() > 0  # (the layers spike: a comparison of nothing proves none)
    np.testing.assert_allclose(result.evidence, reference['output'], rtol=1e-4, atol=1e-4)


def test_an_event_stdp_graph_is_refused_for_its_nodes_and_not_offered_a_check(
        tmp_path, capsys):
    """
    Its import blamed the input's channels (1, 'as the metadata says').

    Its export's note offered --check, which refuses event models.
    """
    out = tmp_path / 'ev.nir'
    code, _, err = _cli_json(['export', '-m', str(MODELS / 'stdp_nmnist_synth_n400.json'),
                              '-o', str(out)], capsys)
    assert code == 0 and '--check' not in err, err
    code, _, err = _cli_json(['import', str(out), '-o', str(tmp_path / 'ev.json')], capsys)
    assert code != 0 and 'Delay is not supported' in err and 'channels' not in err, err


def test_export_refuses_what_check_cannot_run_before_writing_the_graph(
        tmp_path, fashion_dir, capsys):
    """
    A --check that failed on its data, seed or model wrote the graph first.

    Data of another shape, a negative seed or a model with no labels (a re-run was then
    refused: the file exists); -T alone did nothing.
    """
    graph = tmp_path / 'small.nir'
    write_nir(_residual_graph(1.0, False), graph)  # 3x8x8: not Fashion-MNIST's 28x28
    small = tmp_path / 'small.json'
    assert _cli_json(['import', str(graph), '-o', str(small)], capsys)[0] == 0
    out = tmp_path / 'out.nir'
    cases = [
        (['-m', str(small), '--check', '5', '--data', f'idx:{fashion_dir}'],
         "the data's images have shape [28, 28]"),
        (['-m', str(CONVERTED), '--check', '5', '--seed', '-1'], '--seed: must be >= 0'),
        (['-m', str(STDP), '-T', '8'], 'alone it would change nothing'),
    ]
    model = DiehlCookNetwork(STDPConfig(n_neurons=5, seed=0))  # never labelled
    unlabelled = tmp_path / 'unlabelled.json'
    save_checkpoint(unlabelled, model)
    cases.append((['-m', str(unlabelled), '--check', '5', '--data', f'idx:{fashion_dir}'],
                  'has no label assignment'))
    for argv, said in cases:
        code, _, err = _cli_json(['export', '-o', str(out), *argv], capsys)
        assert code == 2 and said in err and not out.exists(), (argv, err)


def test_check_says_how_much_of_its_agreement_is_no_class_on_both_sides(tmp_path, fashion_test):
    """At T=8 the STDP model's own parameters give no class: 100 % agreement with 0 accuracy."""
    model, _ = load_checkpoint(STDP)
    graph, _ = export_model(model)
    graph = _written(graph, tmp_path)
    figures = resimulate(model, graph, fashion_test.images[:40], fashion_test.labels[:40], 8)
    assert figures['no_class'] > 0.5 and figures['native_accuracy'] < 0.3
    assert figures['agreement'] >= figures['no_class']
    answered = figures['agreement_with_a_class']
    assert answered is None or 0.0 <= answered <= 1.0
    for name in ('plain_nir_agreement', 'rate_input_agreement'):  # (1.0 too, at 0 accuracy)
        assert figures[name] >= figures['no_class']
        assert (figures[f'{name}_with_a_class'] is None) == (answered is None)
    figures = resimulate(model, graph, fashion_test.images[:20], fashion_test.labels[:20], 350)
    assert figures['no_class'] < 0.2 and figures['agreement_with_a_class'] == 1.0
