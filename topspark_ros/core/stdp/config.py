"""
Configuration of the Diehl & Cook network: its structure and its run-time tunable dynamics.

:class:`STDPConfig` is fixed for a trained model (saved in its checkpoint);
:class:`DynamicsParams` are the defaults any call may override (what TopSpark's parameter
enhancement re-tunes per T). The dynamics they parameterise are in :mod:`topspark_ros.core.stdp`.
"""

from dataclasses import asdict, dataclass, fields, replace
import math

from topspark_ros.core.fields import from_dict

INHIBITION_MODES = ('populations', 'direct')
LEARNING_RULES = ('dc', 'pair')
BETWEEN_SAMPLES = ('reset', 'rest')


@dataclass(frozen=True)
class DynamicsParams:
    """
    Run-time tunable dynamics (what TopSpark's parameter enhancement re-tunes per T).

    Attributes
    ----------
    v_thresh_mv
        excitatory firing threshold without ``theta`` (mV).
    v_rest_mv
        excitatory resting potential (mV).
    v_reset_mv
        excitatory potential after a spike (mV).
    tau_v_ms
        excitatory membrane time constant (ms).
    refractory_ms
        excitatory refractory period (ms).
    theta_plus_mv
        adaptive-threshold increment per spike while learning (mV).
    theta_scale
        factor on the adaptive thresholds ``theta`` in the firing condition
        ``v >= v_thresh + theta_scale * theta`` (> 0, dimensionless; see the module doc).
    tau_theta_ms
        adaptive-threshold decay time constant while learning (ms).
    input_rate_hz
        input firing rate of a pixel of intensity 255 (Hz).
    w_inh_mv
        lateral inhibition per inhibiting spike (mV).
    w_exc_inh_mv
        excitatory -> inhibitory weight ('populations' only) (mV).
    nu_pre
        depression learning rate (on pre-synaptic spikes).
    nu_post
        potentiation learning rate (on post-synaptic spikes).

    """

    v_thresh_mv: float = -52.0
    v_rest_mv: float = -65.0
    v_reset_mv: float = -60.0
    tau_v_ms: float = 100.0
    refractory_ms: float = 5.0
    theta_plus_mv: float = 0.05
    theta_scale: float = 1.0
    tau_theta_ms: float = 1e7
    input_rate_hz: float = 128.0
    w_inh_mv: float = 120.0
    w_exc_inh_mv: float = 22.5
    nu_pre: float = 1e-4
    nu_post: float = 1e-2

    def __post_init__(self) -> None:
        """Check ranges; raise ``ValueError`` on an invalid value."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f'{f.name} must be a finite number, got {value!r}')
        for name in ('tau_v_ms', 'tau_theta_ms', 'theta_scale'):
            if getattr(self, name) <= 0:
                raise ValueError(f'{name} must be > 0')
        for name in ('refractory_ms', 'theta_plus_mv', 'input_rate_hz', 'w_inh_mv',
                     'w_exc_inh_mv', 'nu_pre', 'nu_post'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0')

    def replace(self, **changes) -> 'DynamicsParams':
        """Return a copy with ``changes`` applied (validated)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Return the parameters as a plain dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> 'DynamicsParams':
        """Build from a dict written by :meth:`to_dict`; unknown keys raise ``ValueError``."""
        return from_dict(cls, values)


@dataclass(frozen=True)
class STDPConfig:
    """
    Structure of a Diehl & Cook network (fixed for a trained model).

    Attributes
    ----------
    n_inputs
        number of inputs (pixels).
    n_neurons
        excitatory neurons ``N`` (and inhibitory ones in 'populations').
    n_classes
        classes of the readout.
    dt_ms
        simulation step (ms).
    inhibition
        ``'populations'`` or ``'direct'`` (see module docstring).
    learning_rule
        ``'dc'`` (triplet) or ``'pair'`` (PostPre).
    one_spike
        at most one excitatory spike per step.
    between_samples
        ``'reset'`` or ``'rest'`` while learning.
    rest_ms
        input-free time after each learning sample in ``'rest'`` mode (ms).
    w_max
        upper weight bound.
    w_init_max
        initial weights are uniform in ``[0, w_init_max)``, then normalised.
    norm
        target sum of each weight column.
    x_tar
        pre-trace offset of the potentiation.
    tau_pre_ms, tau_post1_ms, tau_post2_ms
        trace time constants (ms).
        inh_v_rest_mv, inh_v_reset_mv, inh_v_thresh_mv, inh_tau_v_ms, inh_refractory_ms:
        inhibitory neurons ('populations').
    seed
        seed of the initial weights and of the model's input-spike stream.

    """

    n_inputs: int = 784
    n_neurons: int = 100
    n_classes: int = 10
    dt_ms: float = 1.0
    inhibition: str = 'populations'
    learning_rule: str = 'dc'
    one_spike: bool = True
    between_samples: str = 'reset'
    rest_ms: float = 150.0
    w_max: float = 1.0
    w_init_max: float = 0.3
    norm: float = 78.4
    x_tar: float = 0.0
    tau_pre_ms: float = 20.0
    tau_post1_ms: float = 20.0
    tau_post2_ms: float = 40.0
    inh_v_rest_mv: float = -60.0
    inh_v_reset_mv: float = -45.0
    inh_v_thresh_mv: float = -40.0
    inh_tau_v_ms: float = 10.0
    inh_refractory_ms: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Check values; raise ``ValueError`` on an invalid one."""
        for name in ('n_inputs', 'n_neurons', 'n_classes'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        for name, allowed in (('inhibition', INHIBITION_MODES),
                              ('learning_rule', LEARNING_RULES),
                              ('between_samples', BETWEEN_SAMPLES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f'{name} must be one of {allowed}, got {getattr(self, name)!r}')
        for name in ('dt_ms', 'w_max', 'norm', 'tau_pre_ms', 'tau_post1_ms', 'tau_post2_ms',
                     'inh_tau_v_ms'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0')
        for name in ('rest_ms', 'w_init_max', 'inh_refractory_ms'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'{name} must be >= 0')

    def to_dict(self) -> dict:
        """Return the configuration as a plain dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> 'STDPConfig':
        """Build from a dict written by :meth:`to_dict`; unknown keys raise ``ValueError``."""
        return from_dict(cls, values)
