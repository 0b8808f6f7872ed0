"""Tests of the enhancement's knobs (core/topspark/knobs.py): values, rounding, the table."""

import pytest

from topspark_ros.core.stdp import DynamicsParams
from topspark_ros.core.topspark.knobs import Knob, round_significant, STAGES, STDP_KNOBS

KNOBS = {k.name: k for k in STDP_KNOBS}


def test_knob_values_and_rounding():
    params = DynamicsParams()
    assert KNOBS['v_thresh_mv'].value(params, 0.5, 1.0) == -58.5  # halfway to v_rest -65
    assert KNOBS['input_rate_hz'].value(params, 2.0, 1.0) == 256.0
    assert KNOBS['input_rate_hz'].value(params, 1 / 3, 1.0) == 42.67  # 4 significant digits
    assert KNOBS['refractory_ms'].value(params, 0.3, 1.0) == 2.0  # whole steps (1.5 -> 2)
    assert KNOBS['refractory_ms'].value(params, 0.3, 0.5) == 1.5
    assert {k.stage for k in STDP_KNOBS} == set(STAGES) == {'inference', 'learning'}
    assert {'v_thresh_mv', 'theta_scale', 'theta_plus_mv', 'tau_theta_ms', 'input_rate_hz',
            'w_inh_mv', 'refractory_ms', 'nu_pre', 'nu_post'} <= set(KNOBS)
    with pytest.raises(ValueError):
        Knob('no_such_field', 'inference', 'ratio', (0.5,), (0.5, 2.0))
    with pytest.raises(ValueError):
        Knob('w_inh_mv', 'inference', 'ratio', (0.5,), (1.5, 2.0))  # range lacks 1
    with pytest.raises(ValueError):
        Knob('w_inh_mv', 'training', 'ratio', (0.5,), (0.5, 2.0))
    with pytest.raises(ValueError):
        Knob('w_inh_mv', 'inference', 'ratio', (0.0,), (0.5, 2.0))


def test_gap_knobs_scale_the_distance_to_rest():
    params = DynamicsParams(v_rest_mv=-65.0, v_reset_mv=-60.0)
    knob = Knob('v_reset_mv', 'inference', 'gap', (2.0,), (0.5, 2.0))
    assert knob.value(params, 2.0, 1.0) == -55.0  # -65 + 2 * (-60 - -65)
    assert knob.value(params, 1.0, 1.0) == -60.0


def test_round_significant():
    assert round_significant(123456.0) == 123500.0
    assert round_significant(0.000123456) == 0.0001235
    assert round_significant(-42.666) == -42.67
    assert round_significant(1.23456, digits=2) == 1.2
    assert round_significant(0.0) == 0.0
    assert round_significant(float('inf')) == float('inf')
