"""Tests of the enhancement's knobs (core/topspark/knobs.py): values, rounding, the tables."""

import pytest

from topspark_ros.core.converted import ConvertedParams
from topspark_ros.core.converted.knobs import CONVERTED_KNOBS
from topspark_ros.core.stdp import DynamicsParams
from topspark_ros.core.stdp.knobs import stdp_knobs
from topspark_ros.core.topspark.knobs import Knob, round_significant, STAGES

KNOBS = {k.name: k for k in stdp_knobs(1.0)}


def test_knob_values_and_rounding():
    params = DynamicsParams()
    assert KNOBS['v_thresh_mv'].value(params, 0.5) == -58.5  # halfway to v_rest -65
    assert KNOBS['input_rate_hz'].value(params, 2.0) == 256.0
    assert KNOBS['input_rate_hz'].value(params, 1 / 3) == 42.67  # 4 significant digits
    assert KNOBS['refractory_ms'].value(params, 0.3) == 2.0  # whole steps (1.5 -> 2)
    half_step = {k.name: k for k in stdp_knobs(0.5)}
    assert half_step['refractory_ms'].value(params, 0.3) == 1.5
    assert {k.stage for k in KNOBS.values()} == set(STAGES) == {'inference', 'learning'}
    assert {'v_thresh_mv', 'theta_scale', 'theta_plus_mv', 'tau_theta_ms', 'input_rate_hz',
            'w_inh_mv', 'refractory_ms', 'nu_pre', 'nu_post'} <= set(KNOBS)
    with pytest.raises(ValueError):
        Knob('w_inh_mv', 'inference', 'ratio', (0.5,), (1.5, 2.0))  # range lacks 1
    with pytest.raises(ValueError):
        Knob('w_inh_mv', 'training', 'ratio', (0.5,), (0.5, 2.0))
    with pytest.raises(ValueError):
        Knob('w_inh_mv', 'inference', 'ratio', (0.0,), (0.5, 2.0))
    with pytest.raises(ValueError, match='origin'):
        Knob('v_reset_mv', 'inference', 'gap', (2.0,), (0.5, 2.0))  # gap without an origin
    with pytest.raises(ValueError, match='origin'):
        Knob('w_inh_mv', 'inference', 'ratio', (2.0,), (0.5, 2.0), origin='v_rest_mv')
    with pytest.raises(ValueError, match='quantum'):
        Knob('refractory_ms', 'inference', 'ratio', (2.0,), (0.5, 2.0), quantum=0.0)


def test_gap_knobs_scale_the_distance_to_their_origin():
    params = DynamicsParams(v_rest_mv=-65.0, v_reset_mv=-60.0)
    knob = Knob('v_reset_mv', 'inference', 'gap', (2.0,), (0.5, 2.0), origin='v_rest_mv')
    assert knob.value(params, 2.0) == -55.0  # -65 + 2 * (-60 - -65)
    assert knob.value(params, 1.0) == -60.0
    assert knob.base(params) == -65.0 and KNOBS['w_inh_mv'].base(params) == 0.0


def test_converted_knobs_stay_valid():
    # Inference knobs only; v_init_frac is clipped into [0, 1] whatever the factor.
    knobs = {k.name: k for k in CONVERTED_KNOBS}
    assert set(knobs) == {'threshold_scale', 'v_init_frac'}
    assert {k.stage for k in CONVERTED_KNOBS} == {'inference'}
    params = ConvertedParams(threshold_scale=1.0, v_init_frac=0.8)
    assert knobs['v_init_frac'].value(params, 2.0) == 1.0
    assert knobs['v_init_frac'].value(params, 0.5) == 0.4
    assert knobs['threshold_scale'].value(params, 0.7) == 0.7
    for knob in CONVERTED_KNOBS:
        for factor in knob.factors + knob.search:
            params.replace(**{knob.name: knob.value(params, factor)})  # never invalid


def test_round_significant():
    assert round_significant(123456.0) == 123500.0
    assert round_significant(0.000123456) == 0.0001235
    assert round_significant(-42.666) == -42.67
    assert round_significant(1.23456, digits=2) == 1.2
    assert round_significant(0.0) == 0.0
    assert round_significant(float('inf')) == float('inf')
