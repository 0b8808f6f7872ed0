"""Tests of the trade-off strategy: feasibility, modes, monotonicity, battery and hysteresis."""

from hypothesis import given, HealthCheck, settings, strategies as st
import pytest

from topspark_ros.core.energy import OpCounts
from topspark_ros.core.topspark.profile import ProfileEntry, TimestepProfile
from topspark_ros.core.topspark.strategy import (BatteryLevel, BatteryPolicy, choose_timestep,
                                                 Constraints, effective_mode,
                                                 feasible_timesteps, LiveSignals, Mode,
                                                 MODE_WEIGHTS, TimestepSelector)

TOL = 1e-9
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_profile(rows) -> TimestepProfile:
    """Return a profile of ``(T, accuracy, latency_ms, energy_j)`` rows."""
    entries = tuple(
        ProfileEntry(timesteps=t, accuracy=a, accuracy_ci95=(0.0, 1.0), n_samples=1000,
                     latency_ms=lat, spikes=10.0 * t, energy_j=e,
                     ops=OpCounts(accumulates=100.0 * t))
        for t, a, lat, e in rows)
    return TimestepProfile(model_path='m.json', model_sha256='0' * 64, model_family='stdp',
                           dataset='fashion-mnist', split='test', n_samples=1000,
                           machine='test', energy_preset='cmos45_fp32',
                           created='2026-11-23T10:00:00+00:00', package_version='0.1.0',
                           entries=entries)


# A TopSpark-like profile: accuracy saturates with T, latency and energy grow linearly.
PROFILE = make_profile([
    (16, 0.700, 0.4, 1.0e-6),
    (32, 0.780, 0.8, 2.0e-6),
    (64, 0.812, 1.6, 4.0e-6),
    (100, 0.818, 2.5, 6.2e-6),
    (200, 0.824, 5.0, 12.5e-6),
    (350, 0.826, 8.8, 21.9e-6),
])


@st.composite
def profiles(draw, monotone: bool = False):
    """Draw small profiles: latency and energy strictly increasing with T."""
    n = draw(st.integers(2, 6))
    ts = sorted(draw(st.lists(st.integers(1, 400), min_size=n, max_size=n, unique=True)))
    accs = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
    if monotone:
        accs = sorted(accs)
    steps_l = draw(st.lists(st.integers(1, 50), min_size=n, max_size=n))
    steps_e = draw(st.lists(st.integers(1, 50), min_size=n, max_size=n))
    rows, lat, energy = [], 0.0, 0.0
    for t, a, dl, de in zip(ts, accs, steps_l, steps_e):
        lat += dl * 0.1
        energy += de * 1e-7
        rows.append((t, a / 1000.0, lat, energy))
    return make_profile(rows)


optional_limit = st.one_of(st.none(), st.floats(0.05, 5.0))
constraints_st = st.builds(
    Constraints, max_accuracy_drop=st.sampled_from([0.0, 0.005, 0.02, 0.1, 1.0]),
    max_latency_ms=optional_limit,
    max_energy_j=st.one_of(st.none(), st.floats(1e-7, 2e-5)),
    max_power_w=st.one_of(st.none(), st.floats(1e-4, 0.1)))
signals_st = st.builds(LiveSignals, battery_fraction=st.one_of(st.none(), st.floats(0.0, 1.0)),
                       rate_hz=st.one_of(st.none(), st.floats(0.5, 100.0)))
modes = st.sampled_from(list(Mode))


def _facts(profile, constraints, signals, policy, level):
    """Recompute, independently, every T's constraint violations and the allowed drop."""
    extra = {BatteryLevel.NORMAL: 0.0, BatteryLevel.LOW: policy.low_extra_drop,
             BatteryLevel.CRITICAL: max(policy.low_extra_drop, policy.critical_extra_drop)}
    allowed = constraints.max_accuracy_drop + extra[level]
    required = profile.baseline.accuracy - allowed
    facts = {}
    for e in profile.entries:
        power = e.energy_j * signals.rate_hz if signals.rate_hz else None  # unknown
        bad = []
        if e.accuracy < required - TOL:
            bad.append('max_accuracy_drop')
        for name, value in (('max_latency_ms', e.latency_ms), ('max_energy_j', e.energy_j),
                            ('max_power_w', power)):
            limit = getattr(constraints, name)
            if limit is not None and value is not None and value > limit * (1 + TOL):
                bad.append(name)
        facts[e.timesteps] = tuple(bad)
    return facts, allowed


def _level(policy, fraction):
    if fraction is None or fraction >= policy.low_fraction:
        return BatteryLevel.NORMAL
    return BatteryLevel.CRITICAL if fraction < policy.critical_fraction else BatteryLevel.LOW


@FAST
@given(profiles(), constraints_st, modes, signals_st)
def test_choice_is_profiled_and_feasibility_is_exact(profile, constraints, mode, signals):
    policy = BatteryPolicy()
    choice = choose_timestep(profile, constraints, mode, signals, policy)
    level = _level(policy, signals.battery_fraction)
    facts, allowed = _facts(profile, constraints, signals, policy, level)
    assert choice.timesteps in profile.timesteps
    assert choice.battery_level == level and choice.mode == effective_mode(mode, level)
    assert choice.allowed_accuracy_drop == pytest.approx(allowed)
    assert choice.violated == facts[choice.timesteps]
    assert choice.feasible == (not choice.violated)
    feasible = [t for t, bad in facts.items() if not bad]
    assert choice.feasible == bool(feasible)  # infeasible only when no T is feasible
    entry = profile.entry(choice.timesteps)
    assert (choice.expected_accuracy, choice.expected_energy_j) == (entry.accuracy,
                                                                    entry.energy_j)
    assert choice.reason.startswith(f'T={choice.timesteps}: ')
    if choice.feasible:
        chosen = [profile.entry(t) for t in feasible]
        if choice.mode == Mode.ACCURACY_FIRST:
            best = max(e.accuracy for e in chosen)
            assert entry.accuracy == best
            assert choice.timesteps == min(e.timesteps for e in chosen if e.accuracy == best)
        elif choice.mode == Mode.ENERGY_SAVER:
            assert entry.energy_j == min(e.energy_j for e in chosen)
        else:
            a_max = max(e.accuracy for e in profile.entries)
            base = profile.baseline

            def objective(e):
                return ((a_max - e.accuracy) / max(allowed, 0.01) + e.latency_ms
                        / base.latency_ms + e.energy_j / base.energy_j) / 3

            assert objective(entry) == pytest.approx(min(map(objective, chosen)), abs=1e-12)
            assert choice.objective == pytest.approx(objective(entry))


@FAST
@given(profiles(), constraints_st, modes, st.floats(1e-7, 3e-5), st.floats(0.05, 1.0))
def test_tighter_energy_budget_never_increases_energy(profile, constraints, mode, budget,
                                                      tighter):
    loose = Constraints(constraints.max_accuracy_drop, constraints.max_latency_ms, budget,
                        constraints.max_power_w)
    tight = Constraints(constraints.max_accuracy_drop, constraints.max_latency_ms,
                        budget * tighter, constraints.max_power_w)
    signals = LiveSignals(rate_hz=10.0)
    a = choose_timestep(profile, loose, mode, signals)
    b = choose_timestep(profile, tight, mode, signals)
    assert b.expected_energy_j <= a.expected_energy_j


@FAST
@given(profiles(monotone=True), constraints_st, modes, st.floats(0.0, 1.0),
       st.floats(0.0, 1.0), st.one_of(st.none(), st.floats(0.5, 100.0)))
def test_lower_battery_never_increases_energy(profile, constraints, mode, f1, f2, rate):
    high, low = max(f1, f2), min(f1, f2)
    a = choose_timestep(profile, constraints, mode, LiveSignals(high, rate_hz=rate))
    b = choose_timestep(profile, constraints, mode, LiveSignals(low, rate_hz=rate))
    assert b.expected_energy_j <= a.expected_energy_j


def test_accuracy_first_without_constraints_takes_the_most_accurate_smallest_t():
    profile = make_profile([(8, 0.6, 1, 1e-6), (16, 0.83, 2, 2e-6), (32, 0.83, 3, 3e-6),
                            (64, 0.82, 4, 4e-6)])
    choice = choose_timestep(profile, Constraints(max_accuracy_drop=1.0), Mode.ACCURACY_FIRST)
    assert choice.timesteps == 16 and choice.feasible
    assert 'highest accuracy' in choice.reason


def test_energy_saver_takes_the_lowest_energy_within_the_allowed_drop():
    choice = choose_timestep(PROFILE, Constraints(max_accuracy_drop=0.015), Mode.ENERGY_SAVER)
    assert choice.timesteps == 64  # 0.812 >= 0.826 - 0.015; T=32 (0.780) is not
    assert choice.reason.startswith('T=64: lowest energy among 4 of 6 T with accuracy >= '
                                    '0.811 (baseline 0.826 - 1.5 pt)')


def test_feasible_timesteps_are_those_the_choice_is_made_among():
    c = Constraints(max_accuracy_drop=0.015)
    assert feasible_timesteps(PROFILE, c) == (64, 100, 200, 350)  # '4 of 6 T' above
    assert feasible_timesteps(PROFILE, Constraints(max_accuracy_drop=0.0)) == (350,)
    c = Constraints(max_accuracy_drop=0.05, max_latency_ms=2.0)
    assert feasible_timesteps(PROFILE, c) == (32, 64)
    assert feasible_timesteps(PROFILE, Constraints(max_accuracy_drop=0.0,
                                                   max_energy_j=1e-6)) == ()
    # A low battery allows 2 points more (BatteryPolicy's default low_extra_drop).
    low = LiveSignals(battery_fraction=0.2)
    assert feasible_timesteps(PROFILE, Constraints(max_accuracy_drop=0.0), low) == (
        64, 100, 200, 350)
    for mode in Mode:
        choice = choose_timestep(PROFILE, Constraints(max_accuracy_drop=0.015), mode)
        assert choice.timesteps in (64, 100, 200, 350)


def test_modes_order_the_choices():
    c = Constraints(max_accuracy_drop=0.02)
    picks = [choose_timestep(PROFILE, c, m).timesteps for m in Mode]
    assert picks == [350, 100, 64]  # accuracy_first, balanced, energy_saver
    assert MODE_WEIGHTS[Mode.BALANCED] == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_infeasible_reports_the_violated_constraints():
    c = Constraints(max_accuracy_drop=0.01, max_latency_ms=0.5, max_energy_j=5e-6)
    choice = choose_timestep(PROFILE, c, Mode.BALANCED)
    assert not choice.feasible
    # T=16 only misses the accuracy bound by 11.6 pt (relative 0.14) while every T accurate
    # enough is >= 3.2x over the latency ceiling: the least-bad T is T=16.
    assert choice.timesteps == 16 and choice.violated == ('max_accuracy_drop',)
    assert 'no profiled T meets' in choice.reason and 'accuracy 0.700 < 0.816' in choice.reason
    c = Constraints(max_accuracy_drop=0.5, max_latency_ms=0.1, max_energy_j=5e-7)
    choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST)
    assert choice.timesteps == 16 and choice.violated == ('max_latency_ms', 'max_energy_j')
    assert 'latency 0.4 ms > 0.1 ms' in choice.reason and 'energy 1 uJ > 500 nJ' in choice.reason


def test_t_above_the_classifiers_maximum_is_not_commanded():
    """The classifier clamped a commanded T=150 to its max_timesteps 16 every few s (a review)."""
    assert choose_timestep(PROFILE, Constraints(max_accuracy_drop=0.0),
                           Mode.BALANCED).timesteps == 350
    choice = choose_timestep(PROFILE, Constraints(max_accuracy_drop=0.02, max_timesteps=64),
                             Mode.ACCURACY_FIRST)
    assert choice.feasible and choice.timesteps == 64
    # None within the accuracy bound below the maximum: the largest T allowed, said so.
    choice = choose_timestep(PROFILE, Constraints(max_accuracy_drop=0.0, max_timesteps=100),
                             Mode.BALANCED)
    assert not choice.feasible and choice.timesteps == 100
    assert 'T <= 100' in choice.reason
    assert feasible_timesteps(PROFILE, Constraints(max_accuracy_drop=1.0, max_timesteps=32)) \
        == (16, 32)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match='max_timesteps'):
            Constraints(max_timesteps=bad)


def test_no_t_above_the_maximum_is_the_least_bad_when_a_t_within_it_is_there():
    """
    T=64 under a cap of 63 violated 'less' (by 1.6 %) than T=32 its accuracy (3.1 %).

    It was commanded, and the classifier clamped it to 63, a T never profiled, run with its
    own parameters (a review). A selector at T=64 when the cap comes down leaves it too.
    """
    capped = Constraints(max_accuracy_drop=0.02, max_timesteps=63)
    choice = choose_timestep(PROFILE, capped, Mode.ENERGY_SAVER)
    assert choice.timesteps == 32 and choice.violated == ('max_accuracy_drop',)
    selector = TimestepSelector(PROFILE, Constraints(max_accuracy_drop=0.02), Mode.ENERGY_SAVER)
    assert selector.update(LiveSignals()).timesteps == 64
    selector.reconfigure(capped, Mode.ENERGY_SAVER, BatteryPolicy(), 0.05)
    assert selector.update(LiveSignals()).timesteps == 32
    # With no profiled T within it, the least bad of all, as before.
    assert choose_timestep(PROFILE, Constraints(max_accuracy_drop=1.0, max_timesteps=8),
                           Mode.ENERGY_SAVER).timesteps == 16


def test_power_uses_the_rate_else_it_is_unchecked():
    c = Constraints(max_accuracy_drop=1.0, max_power_w=0.1)
    # P = E * rate: at 10 Hz every T passes; at 10 kHz T=200 draws 0.125 W > 0.1 W.
    assert choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, LiveSignals(rate_hz=10.0)) \
        .timesteps == 350
    choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, LiveSignals(rate_hz=1e4))
    assert choice.timesteps == 100 and choice.expected_power_w == pytest.approx(0.062)
    # No rate and no power heard (no classifier running yet): the cap is not checked, and
    # said so. Priced as back-to-back inference (P = E / latency, 2.48 to 2.5 mW here) every T
    # was over a 2 mW cap and T went to the one of least power (a review).
    choice = choose_timestep(PROFILE, Constraints(1.0, max_power_w=2e-3), Mode.ACCURACY_FIRST)
    assert choice.feasible and choice.timesteps == 350 and choice.expected_power_w is None
    assert 'power <= 2 mW (unchecked: no inference rate or power heard yet)' in choice.reason


def test_measured_power_scales_with_energy():
    signals = LiveSignals(measured_power_w=0.05, measured_timesteps=100, rate_hz=1.0)
    c = Constraints(max_accuracy_drop=1.0, max_power_w=0.1)
    choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, signals)
    assert choice.timesteps == 100  # T=200 would draw 0.05 * 12.5 / 6.2 > 0.1 W
    assert choice.expected_power_w == pytest.approx(0.05)


def test_power_is_scaled_from_the_t_it_was_measured_at():
    """A window's power at mean T=64 describes T=64, whatever T was measured last."""
    signals = LiveSignals(measured_power_w=0.04, power_timesteps=64.0, measured_timesteps=350,
                          rate_hz=1.0)
    c = Constraints(max_accuracy_drop=1.0, max_power_w=0.05)
    choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, signals)
    # T=100 would draw 0.04 * 6.2 / 4.0 = 0.062 W; scaled from T=350, T=350 "drew" 0.04.
    assert choice.timesteps == 64 and choice.expected_power_w == pytest.approx(0.04)
    with pytest.raises(ValueError, match='power_timesteps'):
        LiveSignals(power_timesteps=0.5)


def test_the_energy_budget_is_checked_on_the_measured_energy():
    """
    The profile's energies are of its data set; the monitor's are of the robot's inputs.

    A budget of 1 uJ passed T=64 at its profiled 0.95 uJ while the monitor measured 1.43 uJ
    (a user review): the check scales the profile as the power check does.
    """
    c = Constraints(max_accuracy_drop=1.0, max_energy_j=5e-6)
    assert choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST).timesteps == 64  # 4 uJ <= 5
    measured = LiveSignals(measured_energy_j=6e-6, power_timesteps=64.0)  # 1.5x the profile
    choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, measured)
    assert choice.timesteps == 32 and not choice.violated  # 64: 6 uJ; 32: 3 uJ
    with pytest.raises(ValueError, match='measured_energy_j'):
        LiveSignals(measured_energy_j=-1.0)


def test_an_agreement_profile_counts_the_loss_from_its_reference():
    """Agreement with the model at T=100 (the reference): the bound is from 1, not T=350's."""
    import dataclasses
    profile = dataclasses.replace(make_profile([
        (8, 0.94, 0.1, 1e-6), (32, 0.97, 0.3, 3e-6), (100, 1.0, 1.0, 9e-6),
        (350, 0.955, 3.0, 30e-6)]), reference_timesteps=100)
    choice = choose_timestep(profile, Constraints(max_accuracy_drop=0.02), Mode.ENERGY_SAVER)
    assert choice.timesteps == 100  # 8 and 32 lose more than 2 points of agreement
    assert 'baseline 1.000' in choice.reason


def test_latency_measured_at_one_t_adds_its_excess_to_every_t():
    """
    What the robot adds to the profile's latency at the T it runs (decoding, preprocessing).

    Scaled by the measured ratio instead, a fixed cost measured at a small T was multiplied
    into every larger T's prediction and pinned T to the smallest.
    """
    c = Constraints(max_accuracy_drop=1.0, max_latency_ms=6.0)
    assert choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST).timesteps == 200
    slow = LiveSignals(measured_latency_ms=10.0, measured_timesteps=200)  # 5 ms more
    choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, slow)
    assert choice.timesteps == 32 and choice.expected_latency_ms == pytest.approx(5.8)
    assert '(5 ms + profiled latency x1.00, as measured at T=200)' in choice.reason
    # Between profiled T the expected latency is interpolated: T=150 -> 3.75 ms.
    mid = LiveSignals(measured_latency_ms=11.25, measured_timesteps=150)  # 7.5 ms more
    choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, mid)
    assert not choice.feasible and choice.timesteps == 16  # the least violation
    assert choice.expected_latency_ms == pytest.approx(7.9)
    fast = LiveSignals(measured_latency_ms=1.0, measured_timesteps=200)
    assert choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, fast).timesteps == 200


def test_battery_policy_levels_modes_and_drops():
    policy = BatteryPolicy(low_extra_drop=0.02, critical_extra_drop=0.05)
    c = Constraints(max_accuracy_drop=0.005)
    full = choose_timestep(PROFILE, c, Mode.BALANCED, LiveSignals(0.8), policy)
    assert full.battery_level == BatteryLevel.NORMAL and full.mode == Mode.BALANCED
    assert full.timesteps == 200 and 'battery' not in full.reason
    low = choose_timestep(PROFILE, c, Mode.BALANCED, LiveSignals(0.22), policy)
    assert low.mode == Mode.ENERGY_SAVER and low.allowed_accuracy_drop == pytest.approx(0.025)
    assert low.timesteps == 64
    assert low.reason.endswith('battery low (22.0% < 30.0%): balanced -> energy_saver, +2.0 pt '
                               'accuracy drop allowed')
    just = choose_timestep(PROFILE, c, Mode.BALANCED, LiveSignals(0.29996), policy)
    assert 'battery low (29.996% < 30.000%)' in just.reason  # '30% < 30%' (a review)
    crit = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, LiveSignals(0.05), policy)
    assert crit.mode == Mode.ENERGY_SAVER and crit.allowed_accuracy_drop == pytest.approx(0.055)
    assert crit.timesteps == 32
    assert effective_mode(Mode.ACCURACY_FIRST, BatteryLevel.LOW) == Mode.BALANCED
    assert effective_mode(Mode.ENERGY_SAVER, BatteryLevel.LOW) == Mode.ENERGY_SAVER


def test_battery_level_hysteresis():
    p = BatteryPolicy(low_fraction=0.3, critical_fraction=0.1, hysteresis_fraction=0.02)
    assert p.level(0.295) == BatteryLevel.LOW and p.level(0.305) == BatteryLevel.NORMAL
    assert p.level(0.305, BatteryLevel.LOW) == BatteryLevel.LOW
    assert p.level(0.321, BatteryLevel.LOW) == BatteryLevel.NORMAL
    assert p.level(0.31, BatteryLevel.CRITICAL) == BatteryLevel.LOW
    assert p.level(0.11, BatteryLevel.CRITICAL) == BatteryLevel.CRITICAL
    assert p.level(0.05, BatteryLevel.LOW) == BatteryLevel.CRITICAL
    assert p.level(None, BatteryLevel.LOW) == BatteryLevel.LOW and p.level(None) == \
        BatteryLevel.NORMAL


@pytest.mark.parametrize('mode', list(Mode))
def test_battery_hovering_at_a_threshold_switches_at_most_once(mode):
    selector = TimestepSelector(PROFILE, Constraints(max_accuracy_drop=0.005), mode)
    picks = [selector.update(LiveSignals(0.30 + (0.005 if i % 2 else -0.005))).timesteps
             for i in range(40)]
    switches = sum(a != b for a, b in zip(picks, picks[1:]))
    assert switches <= 1
    assert selector.battery_level == BatteryLevel.LOW
    used = effective_mode(mode, BatteryLevel.LOW)
    modes = used.value if used == mode else f'{mode.value} -> {used.value}'
    assert selector.current.reason.endswith(
        f'battery low (30.5%, held until >= 32.0%): {modes}, +2.0 pt accuracy drop allowed')


@FAST
@given(profiles(), constraints_st, modes, st.floats(0.05, 0.95), st.floats(0.0, 0.3))
def test_hovering_battery_hypothesis(profile, constraints, mode, threshold, margin):
    policy = BatteryPolicy(low_fraction=threshold, critical_fraction=threshold / 3)
    selector = TimestepSelector(profile, constraints, mode, policy, switch_margin=margin)
    picks = [selector.update(LiveSignals(min(1.0, threshold + (-1) ** i * 0.005),
                                         rate_hz=5.0)).timesteps for i in range(12)]
    assert sum(a != b for a, b in zip(picks, picks[1:])) <= 1


def test_selector_keeps_t_within_the_margin_and_switches_on_violation():
    c = Constraints(max_accuracy_drop=0.02)
    selector = TimestepSelector(PROFILE, c, Mode.ENERGY_SAVER, switch_margin=0.5)
    assert selector.update(LiveSignals()).timesteps == 64
    selector.set_mode(Mode.ACCURACY_FIRST)  # a change of settings chooses afresh
    assert selector.update(LiveSignals()).timesteps == 350
    selector.reconfigure(mode=Mode.ENERGY_SAVER)
    assert selector.update(LiveSignals()).timesteps == 64
    # A measured slowdown at the current T makes T=64 violate the ceiling: switch at once.
    selector.set_constraints(Constraints(max_accuracy_drop=0.2, max_latency_ms=2.0))
    assert selector.update(LiveSignals()).timesteps == 16
    selector = TimestepSelector(PROFILE, Constraints(0.2, max_latency_ms=2.0), Mode.BALANCED,
                                switch_margin=0.9)
    first = selector.update(LiveSignals())
    assert first.timesteps == 32
    slow = selector.update(LiveSignals(measured_latency_ms=1.2))  # at T=32: x1.5 slower
    assert slow.timesteps == 32 and slow.feasible
    slower = selector.update(LiveSignals(measured_latency_ms=2.4))  # x3: 2.4 ms > 2 ms
    assert slower.timesteps == 16 and slower.feasible


def test_selector_margin_holds_an_objective_gain_below_it():
    c = Constraints(max_accuracy_drop=0.02)
    # Low battery: energy_saver prefers T=64, 35.5 % less energy than T=100.
    selector = TimestepSelector(PROFILE, c, Mode.BALANCED, switch_margin=0.4)
    assert selector.update(LiveSignals(0.9)).timesteps == 100
    held = selector.update(LiveSignals(0.25))
    assert held.timesteps == 100 and held.feasible and held.mode == Mode.ENERGY_SAVER
    assert held.reason.startswith('T=100: kept, meets accuracy >= 0.786')
    assert 'T=64 would improve the energy_saver objective by only 35.5% (switch margin 40%)' \
        in held.reason
    selector = TimestepSelector(PROFILE, c, Mode.BALANCED, switch_margin=0.3)
    selector.update(LiveSignals(0.9))
    assert selector.update(LiveSignals(0.25)).timesteps == 64


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        Constraints(max_accuracy_drop=-0.1)
    with pytest.raises(ValueError):
        Constraints(max_latency_ms=0.0)
    with pytest.raises(ValueError):
        BatteryPolicy(low_fraction=0.1, critical_fraction=0.2)
    with pytest.raises(ValueError):
        LiveSignals(battery_fraction=1.5)
    with pytest.raises(ValueError):
        LiveSignals(measured_timesteps=0)
    with pytest.raises(ValueError):
        TimestepSelector(PROFILE, switch_margin=2.0)
    with pytest.raises(ValueError):
        Mode('fastest')
    assert LiveSignals().replace(rate_hz=2.0).rate_hz == 2.0


def test_a_t_left_for_a_power_violation_is_taken_again_only_with_headroom():
    """
    Near a power cap the monitor's measurements scatter around it: T switched back and forth.

    T=100 over the cap switches down at once; back up only once T=100 would draw at most
    (1 - switch_margin) of the cap, not on every window that puts it just under.
    """
    c = Constraints(max_accuracy_drop=1.0, max_power_w=0.1)
    selector = TimestepSelector(PROFILE, c, Mode.ACCURACY_FIRST, switch_margin=0.05)
    at = {t: next(e.energy_j for e in PROFILE.entries if e.timesteps == t) for t in (64, 100)}

    def signals(t: int, t100_power: float) -> LiveSignals:  # measured at t, as T=100 would be
        return LiveSignals(measured_power_w=t100_power * at[t] / at[100], power_timesteps=t,
                           rate_hz=1.0)

    assert selector.update(signals(100, 0.09)).timesteps == 100
    down = selector.update(signals(100, 0.102))
    assert down.timesteps == 64 and down.feasible
    picks = [selector.update(signals(64, 0.098 if i % 2 else 0.097)).timesteps
             for i in range(20)]
    assert picks == [64] * 20  # just under the cap: kept, no switching back and forth
    assert selector.current.reason.startswith('T=64: kept, meets accuracy')
    assert 'T=100 would be within the switch margin (5%) of its power cap' in \
        selector.current.reason
    assert selector.update(signals(64, 0.094)).timesteps == 100  # 6 % headroom: back up


def test_latencies_measured_at_two_t_fit_a_fixed_cost_and_a_scale():
    """
    Measured at two T, the robot's latency is a fixed cost plus a multiple of the profile's.

    A machine twice as slow as profiled, no fixed cost: from T=64 alone (3.2 ms for a
    profiled 1.6) T=200 reads 6.6 ms and is taken under a 9 ms ceiling; it runs 10. With
    T=32's 1.6 ms beside it the fit finds the scale: T=100, 5 ms.
    """
    c = Constraints(max_accuracy_drop=1.0, max_latency_ms=9.0)
    one = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST,
                          LiveSignals(measured_latency_ms=3.2, measured_timesteps=64))
    assert one.timesteps == 200 and one.expected_latency_ms == pytest.approx(6.6)
    two = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, LiveSignals(
        measured_latency_ms=3.2, measured_timesteps=64, latency_points=((32, 1.6),)))
    assert two.timesteps == 100 and two.expected_latency_ms == pytest.approx(5.0)
    assert '(0 ms + profiled latency x2.00, as measured at T=32, 64)' in two.reason
    # A fixed cost and a scale: 3 ms + 1.5 x the profile, fitted from three T.
    both = LiveSignals(measured_latency_ms=3.0 + 1.5 * 2.5, measured_timesteps=100,
                       latency_points=((16, 3.0 + 1.5 * 0.4), (32, 3.0 + 1.5 * 0.8)))
    fitted = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, both)
    assert fitted.timesteps == 100 and fitted.expected_latency_ms == pytest.approx(6.75)
    # A faster machine never loosens the ceiling below the profile's own latencies.
    fast = LiveSignals(measured_latency_ms=0.8, measured_timesteps=64,
                       latency_points=((32, 0.4),))
    quick = choose_timestep(PROFILE, Constraints(1.0, max_latency_ms=8.0), Mode.ACCURACY_FIRST,
                            fast)
    assert quick.timesteps == 200 and quick.expected_latency_ms == 5.0  # not 2.5
    with pytest.raises(ValueError, match='latency_points'):
        LiveSignals(latency_points=((0, 1.0),))
    with pytest.raises(ValueError, match='latency_points'):
        LiveSignals(latency_points=((32, -1.0),))


def test_after_a_dip_t_climbs_back_to_the_best_t_with_headroom():
    """
    A switch for a better objective goes to the best T with headroom, not nowhere.

    With the best T within the switch margin of a limit, T stayed where a battery dip had
    put it (T=8 for good after a dip to 3 %; a review of this stop).
    """
    c = Constraints(max_accuracy_drop=1.0, max_energy_j=12.6e-6)  # T=200: 12.5 uJ, no room
    selector = TimestepSelector(PROFILE, c, Mode.ACCURACY_FIRST)
    assert selector.update(LiveSignals(1.0)).timesteps == 200  # a fresh choice: feasible
    assert selector.update(LiveSignals(0.03)).timesteps == 16  # critical: energy_saver
    back = selector.update(LiveSignals(1.0))
    assert back.timesteps == 100 and back.feasible
    assert 'T=200 would be within the switch margin (5%) of its energy budget' in back.reason
    assert selector.update(LiveSignals(1.0)).timesteps == 100  # and stays


def test_settings_given_again_as_they_are_keep_the_switch_margin():
    """
    A node passes every setting at each parameter set: the same ones change nothing.

    Set to its energy_timeout_s, the controller dropped the switch margin and moved T back to
    the T the margin kept it from (a review); a setting that changes still chooses afresh.
    """
    c = Constraints(max_accuracy_drop=1.0, max_energy_j=12.6e-6)  # T=200: 12.5 uJ, no room
    selector = TimestepSelector(PROFILE, c, Mode.ACCURACY_FIRST)
    assert selector.update(LiveSignals(1.0)).timesteps == 200
    assert selector.update(LiveSignals(0.03)).timesteps == 16  # critical
    assert selector.update(LiveSignals(1.0)).timesteps == 100  # T=200 within the margin
    selector.reconfigure(constraints=c, mode=Mode.ACCURACY_FIRST,
                         battery_policy=selector.battery_policy, switch_margin=0.05)
    assert selector.update(LiveSignals(1.0)).timesteps == 100  # kept
    selector.reconfigure(switch_margin=0.01)
    assert selector.update(LiveSignals(1.0)).timesteps == 200  # a change: afresh


def test_each_better_battery_level_waits_recover_s_above_its_own_threshold():
    """
    Critical held; 0.5 at t=101, a dip to 0.2 (low) at 104, 0.5 again at 106.5.

    One timer for any better level took normal at 106.5, 0.5 s after the charge came back
    above low's threshold (a review). Low has waited 5 s at 106 (above 0.12 since 101):
    taken; normal waits from 106.5.
    """
    policy = BatteryPolicy(recover_s=5.0)
    selector = TimestepSelector(PROFILE, Constraints(max_accuracy_drop=1.0),
                                Mode.ACCURACY_FIRST, policy)
    levels = [selector.update(LiveSignals(charge), now_s=t).battery_level.value
              for t, charge in ((100.0, 0.05), (101.0, 0.5), (104.0, 0.2), (106.5, 0.5),
                                (111.0, 0.5), (111.5, 0.5))]
    assert levels == ['critical', 'critical', 'critical', 'low', 'low', 'normal']


def test_a_better_battery_levels_wait_goes_on_across_a_step_of_the_clock():
    """A bag looping took simulated time back 150 s: the wait went on 150 s longer."""
    policy = BatteryPolicy(recover_s=5.0)
    selector = TimestepSelector(PROFILE, Constraints(max_accuracy_drop=1.0),
                                Mode.ACCURACY_FIRST, policy)
    assert selector.update(LiveSignals(0.05), now_s=200.0).battery_level.value == 'critical'
    assert selector.update(LiveSignals(0.5), now_s=201.0).battery_level.value == 'critical'
    selector.shift(-150.0)  # 203 -> 53
    assert selector.update(LiveSignals(0.5), now_s=53.0).battery_level.value == 'critical'
    assert selector.update(LiveSignals(0.5), now_s=56.0).battery_level.value != 'critical'


def test_points_too_close_in_profiled_latency_are_not_fitted():
    """Jitter between the medians of two nearby T fitted a wild slope (a review)."""
    c = Constraints(max_accuracy_drop=1.0, max_latency_ms=8.0)
    near = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, LiveSignals(
        measured_latency_ms=5.6, measured_timesteps=32, latency_points=((16, 5.0),)))
    assert '(4.7 ms + profiled latency x1.00, as measured at T=16, 32)' in near.reason
    assert near.timesteps == 100  # 2.5 + 4.7 ms; the fit through both: x1.5, T=100 8.15 ms


def test_a_machine_many_times_slower_than_profiled_is_fitted_from_two_t():
    """
    Measured at T=16 and 200 on a robot 10 times slower (0.1 ms + 10 x the profile): fitted.

    The fit asked for profiled latencies a quarter of the measured mean apart, as if the
    scale were 1: it fell back to a fixed cost (the median excess, 24.4 ms) and took T=350
    at 33.2 ms predicted under a 40 ms ceiling, where T=200 had measured 50.1 (a review).
    """
    c = Constraints(max_accuracy_drop=1.0, max_latency_ms=40.0)
    robot = {e.timesteps: 0.1 + 10.0 * e.latency_ms for e in PROFILE.entries}
    choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, LiveSignals(
        measured_latency_ms=robot[200], measured_timesteps=200,
        latency_points=((16, robot[16]),)))
    assert '(0.1 ms + profiled latency x10.00, as measured at T=16, 200)' in choice.reason
    assert choice.timesteps == 100 and choice.expected_latency_ms == pytest.approx(robot[100])


def test_one_t_measured_under_load_is_not_fitted_as_a_slope():
    """
    A robot of 20 ms + the profile; T=32's results slowed by a third (27 ms) by a load.

    Fitted (a rise of a quarter of the mean was enough), a scale of 16.5 priced every T above
    32 over a 30 ms ceiling that each meets, and T stayed at 16 (a review of this stop).
    """
    c = Constraints(max_accuracy_drop=1.0, max_latency_ms=30.0)
    choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, LiveSignals(
        measured_latency_ms=27.0, measured_timesteps=32, latency_points=((16, 20.4),)))
    assert 'profiled latency x1.00' in choice.reason
    assert choice.timesteps == 200  # 23.1 + 5.0 ms predicted, 25 ms on the robot


def test_a_t_measured_over_the_ceiling_is_not_taken_again_on_the_models_word():
    """
    T=64 measured 6.3 ms; the fixed cost the points share (4.65 ms) predicts it at 6.25.

    Under a 6.28 ms ceiling the model alone took T=64 again, where it had broken the
    ceiling (a review).
    """
    c = Constraints(max_accuracy_drop=1.0, max_latency_ms=6.28)
    choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, LiveSignals(
        measured_latency_ms=5.0, measured_timesteps=16, latency_points=((64, 6.3),)))
    assert '(4.65 ms + profiled latency x1.00' in choice.reason
    assert choice.timesteps == 32


def test_points_whose_profiled_latencies_are_near_are_not_fitted_whatever_they_measured():
    """
    T=64 and 100 (1.6 and 2.5 ms profiled) measured 3 ms apart: no slope of 3.3 from them.

    (A fitted rise large enough is not enough: the points must be apart in the profile.)
    """
    c = Constraints(max_accuracy_drop=1.0, max_latency_ms=8.0)
    near = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, LiveSignals(
        measured_latency_ms=6.0, measured_timesteps=100, latency_points=((64, 3.0),)))
    assert '(2.45 ms + profiled latency x1.00, as measured at T=64, 100)' in near.reason


def test_a_fixed_cost_too_close_to_fit_is_the_median_of_all_the_t_measured():
    """
    From the T run last alone, the fixed cost moved with each T's noise (a review).

    Under a ceiling near the measured latencies (0.5 to 0.8 ms, about 0.5 of it per frame
    whatever T), T switched 216 to 274 times in 25 s: each new T moved every prediction.
    """
    c = Constraints(max_accuracy_drop=1.0, max_latency_ms=6.0)
    points = ((16, 5.0), (32, 5.5), (64, 6.2))  # excess 4.6, 4.7, 4.6 over the profile
    chosen = set()
    for t, ms in points:
        others = tuple(p for p in points if p[0] != t)
        choice = choose_timestep(PROFILE, c, Mode.ACCURACY_FIRST, LiveSignals(
            measured_latency_ms=ms, measured_timesteps=t, latency_points=others))
        chosen.add(choice.timesteps)
        assert '(4.6 ms + profiled latency x1.00' in choice.reason, choice.reason
    assert chosen == {32}  # 0.8 + 4.6 <= 6 < 1.6 + 4.6, whichever T ran last


# Early exit: T is a budget priced at the steps it uses ----------------------------------------
SHIPPED_PROFILE = (__import__('pathlib').Path(__file__).resolve().parents[3] / 'models'
                   / 'stdp_fmnist_n400.profile.yaml')


def _with_early_exit(profile, figures):
    """Return ``profile`` with ``{T: (early-exit accuracy, mean steps)}`` on its entries."""
    import dataclasses
    entries = tuple(dataclasses.replace(e, early_exit_accuracy=figures[e.timesteps][0],
                                        early_exit_mean_timesteps=figures[e.timesteps][1],
                                        early_exit_margin=3.0, early_exit_min_steps=8)
                    if e.timesteps in figures else e for e in profile.entries)
    return dataclasses.replace(profile, entries=entries)


def test_with_early_exit_a_budget_is_priced_at_the_steps_the_shipped_profile_measured():
    """
    The shipped model at T=350 with early exit uses 82.4 steps on average (1.2 uJ, not 5.2).

    Priced at the whole T, an energy budget of 1.5 uJ took T=100 (74.9 %) where T=350 with
    early exit (75.2 %) spends 1.2 uJ.
    """
    from topspark_ros.core.topspark.profile import load_profile
    profile = load_profile(SHIPPED_PROFILE)
    limits = Constraints(max_accuracy_drop=0.02, max_energy_j=1.5e-6)
    whole = choose_timestep(profile, limits, Mode.ACCURACY_FIRST)
    assert whole.timesteps == 100 and whole.expected_steps == 100.0
    assert 'early exit' not in whole.reason
    choice = choose_timestep(profile, limits, Mode.ACCURACY_FIRST,
                             LiveSignals(early_exit=True))
    entry = profile.entry(350)
    assert choice.timesteps == 350 and choice.feasible
    assert choice.expected_steps == pytest.approx(entry.early_exit_mean_timesteps)
    # T=350's energy at its own parameters, scaled by the steps (the curve across T read at
    # 82.4 steps was of other T's parameters: 2.2x the measured energy for the event model)
    assert choice.expected_energy_j == pytest.approx(
        entry.energy_j * entry.early_exit_mean_timesteps / 350)
    assert choice.expected_energy_j < 1.25e-6 < entry.energy_j
    assert choice.expected_latency_ms == entry.latency_ms  # the ceiling is per input: whole T
    # ... so a ceiling below the whole T's latency refuses it, whatever the mean steps (at
    # the mean steps, 18 % of the inputs at T=250 ran past it; a review)
    capped = choose_timestep(profile, Constraints(max_accuracy_drop=0.02, max_latency_ms=0.06),
                             Mode.ACCURACY_FIRST, LiveSignals(early_exit=True))
    assert capped.timesteps == 100 and capped.expected_latency_ms <= 0.06  # T=150: 0.081 ms
    assert choice.expected_accuracy == entry.early_exit_accuracy
    assert 'early exit: T=350 priced at 82.4 steps (as profiled), accuracy 0.752' \
        in choice.reason


def test_a_t_between_profiled_ones_under_early_exit_is_priced_at_its_own_energy_scaled():
    """A classifier capped at T=63 ran its steps priced off the curve across T (a review)."""
    from topspark_ros.core.topspark.strategy import profiled_energy_j
    profile = PROFILE  # e(32) 2, e(64) 4 uJ: e(63) = 3.9375 uJ by interpolation
    assert profiled_energy_j(profile, 20.0, 63) == pytest.approx(3.9375e-6 * 20 / 63)
    assert profiled_energy_j(profile, 20.0, 64) == pytest.approx(4.0e-6 * 20 / 64)
    assert profiled_energy_j(profile, 20.0) == pytest.approx(2.0e-6 - 0.75e-6)  # across T
    assert profiled_energy_j(profile, 64.0, 64) == 4.0e-6
    with pytest.raises(ValueError, match='power_run_at'):
        LiveSignals(power_run_at=0)


def test_with_early_exit_the_accuracy_is_the_early_exit_one():
    """A rule that gives up accuracy at T: the full-T accuracy was promised instead."""
    profile = _with_early_exit(PROFILE, {64: (0.79, 30.0), 100: (0.80, 40.0),
                                         200: (0.805, 50.0), 350: (0.806, 60.0)})
    limits = Constraints(max_accuracy_drop=0.02)  # needs 0.806 of the baseline's 0.826
    assert choose_timestep(profile, limits, Mode.ENERGY_SAVER).timesteps == 64  # 0.812
    # with early exit T=64 to 200 give 0.790 to 0.805: below the bound
    choice = choose_timestep(profile, limits, Mode.ENERGY_SAVER, LiveSignals(early_exit=True))
    assert choice.timesteps == 350 and choice.expected_accuracy == 0.806
    assert choice.expected_steps == 60.0
    # required: the baseline without early exit (T=350's full 0.826), not its early exit's
    assert 'baseline 0.826' in choice.reason
    tight = choose_timestep(profile, Constraints(max_accuracy_drop=0.0), Mode.ENERGY_SAVER,
                            LiveSignals(early_exit=True))
    assert not tight.feasible and tight.violated == ('max_accuracy_drop',)
    assert 'accuracy 0.806 < 0.826' in tight.reason


def test_steps_measured_at_a_t_price_it_over_the_profiles_and_need_early_exit():
    profile = _with_early_exit(PROFILE, {350: (0.826, 60.0)})
    limits = Constraints(max_accuracy_drop=1.0, max_energy_j=6.5e-6)
    signals = LiveSignals(early_exit=True, steps_used=((350, 90.0), (200, 120.0)))
    choice = choose_timestep(profile, limits, Mode.ACCURACY_FIRST, signals)
    assert choice.timesteps == 350 and choice.expected_steps == 90.0  # e(90) < 6.2 uJ
    assert '(as measured)' in choice.reason
    # no figure at T=200: priced whole without a measurement, at the steps measured with one
    rows = {t: choose_timestep(profile, Constraints(max_accuracy_drop=1.0,
                                                    max_timesteps=t), Mode.ACCURACY_FIRST,
                               LiveSignals(early_exit=True)) for t in (200,)}
    assert rows[200].expected_steps == 200.0 and 'whole: none measured or profiled' \
        in rows[200].reason
    # early exit off (the results say so): the steps measured before are not used
    off = choose_timestep(profile, limits, Mode.ACCURACY_FIRST, signals.replace(
        early_exit=False))
    assert off.timesteps == 100 and off.expected_steps == 100.0


def test_with_early_exit_measured_energy_and_latency_are_set_against_the_steps_used():
    """The monitor's energy is at the steps run; a T's latency at the steps it uses."""
    profile = _with_early_exit(PROFILE, {100: (0.818, 50.0), 200: (0.824, 64.0),
                                         350: (0.826, 100.0)})
    # measured at T=200 using 64 steps: the profile's e(64) = 4 uJ, measured 6 uJ (1.5x)
    signals = LiveSignals(early_exit=True, measured_energy_j=6e-6, power_timesteps=64.0,
                          measured_timesteps=200, measured_latency_ms=2.6)
    choice = choose_timestep(profile, Constraints(max_accuracy_drop=1.0, max_energy_j=8e-6),
                             Mode.ACCURACY_FIRST, signals)
    assert choice.timesteps == 200  # 350: 1.5 x e(100 steps) = 9.3 uJ > 8
    assert choice.expected_energy_j == pytest.approx(6e-6)
    # the latency measured at T=200 (64 steps, profiled 1.6 ms) adds 1 ms to every T, whose
    # ceiling is checked at the whole T (an input that never decides)
    assert choice.expected_latency_ms == pytest.approx(1.0 + 5.0)
    t100 = choose_timestep(profile, Constraints(max_accuracy_drop=1.0, max_timesteps=100),
                           Mode.ACCURACY_FIRST, signals)
    assert t100.expected_latency_ms == pytest.approx(1.0 + 2.5)
    # (priced at T=100's 50 steps, the objective's latency is l(50): balanced weighs it)
    with pytest.raises(ValueError, match='steps_used at T=32'):
        LiveSignals(steps_used=((32, 40.0),))
    with pytest.raises(ValueError, match='steps_used: T must be'):
        LiveSignals(steps_used=((0, 1.0),))


@FAST
@given(profiles(), constraints_st, modes, signals_st)
def test_early_exit_without_figures_or_measurements_prices_every_t_whole(profile, constraints,
                                                                         mode, signals):
    whole = choose_timestep(profile, constraints, mode, signals)
    early = choose_timestep(profile, constraints, mode, signals.replace(early_exit=True))
    assert early.reason.startswith(whole.reason)
    assert early.reason.endswith('(whole: none measured or profiled), accuracy '
                                 f'{whole.expected_accuracy:.3f}')
    assert (early.timesteps, early.expected_energy_j, early.expected_latency_ms,
            early.expected_accuracy, early.violated) == (
        whole.timesteps, whole.expected_energy_j, whole.expected_latency_ms,
        whole.expected_accuracy, whole.violated)
    assert early.expected_steps == whole.expected_steps == whole.timesteps


def test_profiled_steps_of_a_t_not_run_yet_are_scaled_as_the_t_measured_ran():
    """
    The robot's inputs used 85 to 123 steps at T=250 and 350 against 77 and 82 profiled.

    Every T measured read dearer than the T not run yet, and T went through every profiled T
    in turn as it came up (a review of the controller with early exit).
    """
    from topspark_ros.core.topspark.profile import load_profile
    profile = load_profile(SHIPPED_PROFILE)
    measured = 1.2 * profile.entry(250).early_exit_mean_timesteps
    signals = LiveSignals(early_exit=True, steps_used=((250, measured),))
    for t in (350, 150):
        choice = choose_timestep(profile, Constraints(max_accuracy_drop=1.0, max_timesteps=t),
                                 Mode.ACCURACY_FIRST, signals)
        assert choice.timesteps == t
        assert choice.expected_steps == pytest.approx(
            1.2 * profile.entry(t).early_exit_mean_timesteps)
        assert '(as profiled, scaled as the T measured ran)' in choice.reason
    # T=8, whose profiled mean is all of its 8 steps (the floor), is 'as profiled' (it read
    # 'whole: none measured or profiled')
    eight = choose_timestep(profile, Constraints(max_accuracy_drop=1.0, max_timesteps=8),
                            Mode.ACCURACY_FIRST, LiveSignals(early_exit=True))
    assert 'T=8 priced at 8.0 steps (as profiled)' in eight.reason
