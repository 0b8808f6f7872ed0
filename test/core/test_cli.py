"""Tests of the ``topspark`` command line (in-process, through ``main``)."""

import json

import pytest

import topspark_ros
from topspark_ros.cli import main


def test_train_then_eval_json(tmp_path, fashion_dir, capsys):
    out = tmp_path / 'model.json'
    code = main(['train', '--data-dir', str(fashion_dir), '--n-train', '300', '--n-label', '200',
                 '--n-eval', '200', '--neurons', '50', '--timesteps', '150', '--output',
                 str(out), '--json', '--quiet'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    trained = json.loads(captured.out.strip().splitlines()[-1])
    assert trained['n_samples'] == 300 and trained['n_label'] == 200
    assert trained['n_eval'] == 200 and trained['timesteps'] == 150
    assert trained['accuracy'] > 0.2 and trained['latency_ms_per_sample'] > 0
    assert out.exists()

    code = main(['eval', '--data-dir', str(fashion_dir), '--model', str(out), '--n-eval', '100',
                 '--timesteps', '100', '--json', '--quiet', '--batch-size', '32'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    for key in ('accuracy', 'n_samples', 'timesteps', 'latency_ms_per_sample',
                'throughput_samples_per_s'):
        assert key in result
    assert result['n_samples'] == 100 and result['timesteps'] == 100
    assert result['trained_timesteps'] == 150 and result['ops']['input_spikes'] > 0


@pytest.mark.parametrize('argv, message', [
    (['eval', '--model', '/nonexistent/model.json'], 'not found'),
    (['train', '--data-dir', '/nonexistent', '--output', '/tmp/x.json'], 'does not exist'),
    (['train', '--output', 'x', '--neurons', '0'], 'must be >= 1'),
    (['train'], 'required'),
    (['fly'], 'invalid choice'),
])
def test_errors_are_one_line(argv, message, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('topspark: error: ') and message in lines[0]


def test_bad_checkpoint_is_an_error(tmp_path, fashion_dir, capsys):
    bad = tmp_path / 'bad.json'
    bad.write_text('not json')
    assert main(['eval', '--data-dir', str(fashion_dir), '--model', str(bad)]) == 1
    assert capsys.readouterr().err.startswith('topspark: error: ')


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(['--version'])
    assert info.value.code == 0
    assert topspark_ros.__version__ in capsys.readouterr().out
