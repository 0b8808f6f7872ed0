"""Tests of the converted family's configuration: structure and run-time parameters."""

import pytest

from topspark_ros.core.converted.config import ConvertedConfig, ConvertedParams, INPUT


def test_params_check_ranges_and_round_trip():
    params = ConvertedParams(threshold_scale=0.8, v_init_frac=0.25)
    assert ConvertedParams.from_dict(params.to_dict()) == params
    assert params.replace(v_init_frac=1.0) == ConvertedParams(0.8, 1.0)
    assert ConvertedParams.from_dict({'threshold_scale': 2}).threshold_scale == 2.0
    for bad in ({'threshold_scale': 0.0}, {'threshold_scale': -1.0},
                {'v_init_frac': 1.5}, {'v_init_frac': -0.1},
                {'threshold_scale': float('nan')}, {'threshold_scale': True},
                {'v_init_frac': '0.5'}):
        with pytest.raises(ValueError):
            ConvertedParams(**bad)
    with pytest.raises(ValueError, match='unknown ConvertedParams fields'):
        ConvertedParams.from_dict({'threshold_scale': 1.0, 'theta': 2.0})
    with pytest.raises(ValueError, match='threshold_scale must be > 0'):
        params.replace(threshold_scale=0.0)


def test_config_round_trip_keeps_built_in_checkpoints_as_they_were():
    config = ConvertedConfig(widths=(4, 8), hidden=8)
    values = config.to_dict()
    assert 'layers' not in values and 'leak' not in values  # absent from built-in checkpoints
    assert values['widths'] == [4, 8] and values['mean'] == [0.286]
    assert ConvertedConfig.from_dict(values) == config
    leaky = ConvertedConfig(widths=(4, 8), hidden=8, leak=[0.5, 1, 0.75])
    assert leaky.leak == (0.5, 1.0, 0.75) and leaky.to_dict()['leak'] == [0.5, 1.0, 0.75]
    assert ConvertedConfig.from_dict(leaky.to_dict()) == leaky
    with pytest.raises(ValueError, match='unknown ConvertedConfig fields'):
        ConvertedConfig.from_dict({**values, 'depth': 3})


@pytest.mark.parametrize('changes, message', [
    ({'arch': 'lenet'}, 'arch must be one of'),
    ({'leak': (0.0,)}, 'leak factors must lie in'),
    ({'leak': (1.5,)}, 'leak factors must lie in'),
    ({'height': 0}, 'height must be a positive int'),
    ({'n_classes': True}, 'n_classes must be a positive int'),
    ({'channels': 4, 'mean': (0.5,) * 4, 'std': (0.5,) * 4}, 'channels must be 1'),
    ({'widths': ()}, 'widths must be positive'),
    ({'widths': (4, 0)}, 'widths must be positive'),
    ({'hidden': -1}, 'hidden must be >= 0'),
    ({'std': (0.0,)}, 'std > 0'),
    ({'mean': (0.1, 0.2)}, 'one value per channel'),
    ({'mu_init': 0.0}, 'mu_init must be > 0'),
    ({'height': 30, 'width': 28, 'widths': (4, 8, 16)}, r'not divisible by 2\^2'),
    ({'arch': 'resnet', 'height': 32, 'width': 16, 'widths': (4, 8)}, 'square input'),
])
def test_config_refuses_invalid_values(changes, message):
    with pytest.raises(ValueError, match=message):
        ConvertedConfig(**changes)


def _conv(c_in, c_out):
    return {'kind': 'conv', 'in': c_in, 'out': c_out, 'kernel': [3, 3], 'stride': [1, 1],
            'padding': [1, 1], 'dilation': [1, 1], 'groups': 1}


def test_graph_layers_are_checked_and_made_plain():
    layers = [{'synapses': [{'source': INPUT, 'op': _conv(1, 2)}]},
              {'synapses': [{'source': '0', 'pool': 2.0,
                             'op': {'kind': 'linear', 'in': 98, 'out': 10}}]}]
    config = ConvertedConfig(arch='graph', layers=layers)
    assert config.layers[1]['synapses'] == [
        {'source': 0, 'pool': 2, 'op': {'kind': 'linear', 'in': 98, 'out': 10}}]
    assert config.layers[0]['synapses'][0]['pool'] == 1  # the default
    assert ConvertedConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="exactly for arch 'graph'"):
        ConvertedConfig(layers=layers)
    with pytest.raises(ValueError, match="exactly for arch 'graph'"):
        ConvertedConfig(arch='graph')
    bad = [
        ([{'synapses': [{'source': 0, 'op': None}]}], 'layer 0: source 0 or pool 1'),
        ([{'synapses': [{'source': INPUT, 'pool': 0, 'op': None}]}], 'out of range'),
        ([{'synapses': [{'source': INPUT, 'op': {'kind': 'lstm'}}]}], "unknown op kind 'lstm'"),
        ([{'synapses': [{'source': INPUT, 'op': {'kind': 'conv', 'in': 1}}]}], 'malformed'),
        ([{'inputs': []}], 'layer 0: malformed'),
        ([{'synapses': []}], 'layer 0 has no input'),
    ]
    for layers, message in bad:
        with pytest.raises(ValueError, match=message):
            ConvertedConfig(arch='graph', layers=layers)
