"""
The Diehl & Cook (2015) network: per-sample online STDP learning, batched inference.

The dynamics are defined in :mod:`topspark_ros.core.stdp`. The timestep count ``T`` is never
stored: every call takes it. Run-time tunable dynamics live in :class:`DynamicsParams`; pass
one to a call to override the model's defaults for that call.
"""

from dataclasses import fields, replace
import math
import threading
from typing import Optional, Tuple

import numpy as np

from topspark_ros.core.energy import OpCounts
from topspark_ros.core.events.encode import EventEncoding
from topspark_ros.core.inputs import Inputs, SampleSeeds, SpikeEvents
from topspark_ros.core.model import (check_device, check_input_kind, check_timesteps,
                                     InferenceResult, predicted_classes)
from topspark_ros.core.preprocess import FrameSpec
from topspark_ros.core.stdp.config import DynamicsParams, STDPConfig
from topspark_ros.core.stdp.encoding import draw_seeds, log_no_spike, spike_probabilities
from topspark_ros.core.stdp.engine import NumbaEngine, PoissonInput, SimulationConstants
from topspark_ros.core.stdp.engine import simulation_constants
from topspark_ros.core.stdp.kernels import ExitRule
from topspark_ros.core.stdp.knobs import stdp_knobs
from topspark_ros.core.stdp.normalise import normalise_columns
from topspark_ros.core.stdp.readout import assign_labels, Readout
from topspark_ros.core.stdp.results import EngineCounts, LearnResult
from topspark_ros.core.topspark.early_exit import class_votes, EarlyExit
from topspark_ros.core.topspark.knobs import Knob

ENGINES = ('numba', 'torch')


_UINT8 = np.dtype(np.uint8)
"""The dtype of uint8 arrays: the one-frame path tests it by identity first (60 -> 24 ns)."""


def _raw_seeds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Return ``draw_seeds(rng, n)``: the same values, drawn directly when ``rng`` is PCG64."""
    if type(rng.bit_generator) is np.random.PCG64:
        return rng.bit_generator.random_raw(n)
    return draw_seeds(rng, n)


class _SeedStream:
    """
    A model's own stream of per-sample seeds: its PCG64 generator's raw outputs, 64 at a time.

    :meth:`take` returns the values that drawing ``n`` from the generator at each call would
    return, in the same order (kept in a block of 64, a one-frame call's seed costs 0.15 us
    against 0.4 for numpy's ``random_raw(1)``, 4 % of the call at small ``T``). Takes are
    serialised, as numpy's are, so that two threads never get the same seed; the arrays taken
    are disjoint parts of blocks never written again. Copies and pickles carry the generator
    and what is left of the block, so that they go on with the same seeds.
    """

    _BLOCK = 64

    def __init__(self, rng: np.random.Generator) -> None:
        if type(rng.bit_generator) is not np.random.PCG64:
            raise TypeError('the seed stream draws raw PCG64 outputs')
        self._rng = rng
        self._block = np.zeros(0, np.uint64)
        self._next = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> np.ndarray:
        """Return the next ``n`` seeds, ``uint64 [n]``."""
        with self._lock:
            start, block = self._next, self._block
            if start + n <= block.shape[0]:
                self._next = start + n
                return block[start:start + n]
            left = block[start:]
            more = n - left.shape[0]
            if more >= self._BLOCK:  # a batch: what is left, then its own draw
                self._block, self._next = block[:0], 0
                return np.concatenate((left, _raw_seeds(self._rng, more)))
            self._block, self._next = _raw_seeds(self._rng, self._BLOCK), more
            return np.concatenate((left, self._block[:more])) if left.shape[0] \
                else self._block[:more]

    def arrays(self) -> dict:
        """
        Return the stream's position as arrays, for :meth:`restored`.

        ``seed_stream.generator`` ``uint64 [6]``: the PCG64 state and increment (128 bits
        each, high word first) and the generator's buffered 32 bits (flag, value);
        ``seed_stream.block`` and ``seed_stream.next``: the block and where takes go on.
        """
        with self._lock:
            state = self._rng.bit_generator.state
            words = [w for key in ('state', 'inc')
                     for w in divmod(int(state['state'][key]), 1 << 64)]
            words += [int(state['has_uint32']), int(state['uinteger'])]
            return {'seed_stream.generator': np.array(words, np.uint64),
                    'seed_stream.block': self._block.copy(),
                    'seed_stream.next': np.array(self._next, np.int64)}

    @classmethod
    def restored(cls, arrays: dict) -> '_SeedStream':
        """Return a stream that goes on from the position :meth:`arrays` returned."""
        words = [int(w) for w in np.asarray(arrays['seed_stream.generator'], np.uint64)]
        if len(words) != 6:
            raise ValueError(f'a seed stream state of {len(words)} words, not 6')
        state = {'bit_generator': 'PCG64',
                 'state': {'state': (words[0] << 64) | words[1],
                           'inc': (words[2] << 64) | words[3]},
                 'has_uint32': words[4], 'uinteger': words[5]}
        block = np.array(arrays['seed_stream.block'], np.uint64)
        at = int(arrays['seed_stream.next'])
        if not 0 <= at <= block.shape[0]:
            raise ValueError(f'a seed stream position {at} outside its block of {block.shape[0]}')
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = state
        stream = cls(rng)
        stream._block, stream._next = block, at
        return stream

    def __getstate__(self) -> dict:
        """Return the state to copy or pickle: all but the lock."""
        state = self.__dict__.copy()
        del state['_lock']
        return state

    def __setstate__(self, state: dict) -> None:
        """Restore a copied or pickled stream, with a lock of its own."""
        self.__dict__.update(state)
        self._lock = threading.Lock()


def initial_weights(config: STDPConfig) -> np.ndarray:
    """Return normalised random initial weights ``float32 [n_inputs, N]`` from ``config.seed``."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(2)[0])
    w = rng.uniform(0.0, config.w_init_max, (config.n_inputs, config.n_neurons))
    w = np.ascontiguousarray(w, dtype=np.float32)
    normalise_columns(w, float(config.norm), float(config.w_max))
    return w


class DiehlCookNetwork:
    """
    A Diehl & Cook (2015) network: per-sample online STDP learning, batched inference.

    Parameters
    ----------
    config
        structure (fixed).
    params
        default run-time dynamics; any call may pass its own.
    device
        ``'cpu'`` (default) or a torch device such as ``'cuda'``; anything but
        ``'cpu'`` uses the torch engine.
    engine
        ``'numba'`` (CPU default, event driven) or ``'torch'`` (dense reference, any
        device); default from ``device``.
    weights
        ``[n_inputs, N]`` initial weights (default: random, normalised).
    theta
        ``[N]`` initial adaptive thresholds in mV (default: zeros).
    readout
        label assignment (default: none; see :meth:`assign_labels`).
    event_encoding
        how the model's input spikes come from events, for a model trained on events
        (:class:`~topspark_ros.core.events.encode.EventEncoding` of kind
        ``'spike_trains'``, its ``n_inputs`` equal to ``config.n_inputs``; saved in the
        checkpoint); None (default) for a model of frames.

    """

    checkpoint_family = 'stdp'
    input_kinds = (np.ndarray, SpikeEvents)
    """Frames (Poisson coded by the engines) or explicit spike trains."""
    learns_online = True
    """Learns on line with STDP (:meth:`learn`)."""

    def __init__(self, config: STDPConfig = STDPConfig(),
                 params: DynamicsParams = DynamicsParams(),
                 *, device: str = 'cpu', engine: Optional[str] = None,
                 weights: Optional[np.ndarray] = None, theta: Optional[np.ndarray] = None,
                 readout: Optional[Readout] = None, event_encoding=None) -> None:
        """Build the model and its engine."""
        if event_encoding is not None:
            if event_encoding.kind != 'spike_trains' or \
                    event_encoding.n_inputs != config.n_inputs:
                raise ValueError(f'the event encoding ({event_encoding.kind}, '
                                 f'{event_encoding.n_inputs} inputs) does not fit a network of '
                                 f'{config.n_inputs} spike-train inputs')
        self.event_encoding = event_encoding
        self.config = config
        self.params = params
        self.device = check_device(device)
        if engine is None:
            engine = 'numba' if self.device == 'cpu' else 'torch'
        if engine not in ENGINES:
            raise ValueError(f'engine must be one of {ENGINES}, got {engine!r}')
        if engine == 'numba' and self.device != 'cpu':
            raise ValueError(f"the numba engine runs on 'cpu' only, not {self.device!r}")
        self.engine_name = engine
        shape = (config.n_inputs, config.n_neurons)
        w = initial_weights(config) if weights is None else np.asarray(weights, np.float32)
        th = np.zeros(config.n_neurons) if theta is None else np.asarray(theta, np.float64)
        if w.shape != shape:
            raise ValueError(f'weights must have shape {shape}, got {w.shape}')
        if th.shape != (config.n_neurons,):
            raise ValueError(f'theta must have shape ({config.n_neurons},), got {th.shape}')
        if readout is not None and (readout.class_rates.shape
                                    != (config.n_neurons, config.n_classes)):
            raise ValueError(f'readout must be for {config.n_neurons} neurons and '
                             f'{config.n_classes} classes')
        self.readout = readout
        if engine == 'numba':
            self._engine = NumbaEngine(w, th)
        else:
            from topspark_ros.core.stdp.torch_engine import TorchEngine
            self._engine = TorchEngine(w, th, self.device)
        self._seed_stream = _SeedStream(
            np.random.default_rng(np.random.SeedSequence(config.seed).spawn(2)[1]))
        # Per-call setup that depends only on the dynamics, made once (it cost tens of us a
        # call): kernel constants per DynamicsParams, log(1 - p) of the 256 uint8 intensities
        # per input rate.
        self._constants_cache = {}
        self._last_constants = (None, None)
        self._votes = (None, None)
        self._log_q_tables = {}
        self._seed_cache = {}

    _CACHE_SIZE = 32
    """Entries a model keeps per cache (dynamics, input rates); one more empties it."""

    def _constants(self, params: DynamicsParams) -> SimulationConstants:
        """Return :func:`simulation_constants` for ``params`` (cached; never modify it)."""
        last_params, const = self._last_constants
        if params is last_params:  # a camera stream's calls: no hash of the dataclass
            return const
        const = self._constants_cache.get(params)
        if const is None:
            if len(self._constants_cache) >= self._CACHE_SIZE:
                self._constants_cache.clear()
            const = simulation_constants(self.config, params)
            self._constants_cache[params] = const
        self._last_constants = (params, const)
        return const

    def _log_q_table(self, rate_hz: float) -> np.ndarray:
        """Return ``log(1 - p)`` of the 256 levels of uint8 images (made once per rate)."""
        table = self._log_q_tables.get(rate_hz)
        if table is None:
            if len(self._log_q_tables) >= self._CACHE_SIZE:
                self._log_q_tables.clear()
            levels = np.arange(256, dtype=np.uint8)[None, :]
            table = log_no_spike(spike_probabilities(levels, rate_hz, self.config.dt_ms))[0]
            self._log_q_tables[rate_hz] = table
        return table

    @property
    def weights(self) -> np.ndarray:
        """Return a copy of the input weights, ``float32 [n_inputs, N]``."""
        return self._engine.weights()

    @property
    def theta(self) -> np.ndarray:
        """Return a copy of the adaptive thresholds, ``float64 [N]`` (mV)."""
        return self._engine.theta()

    def reset_state(self) -> None:
        """Reset this model's dynamic state (potentials, traces) to rest; weights stay."""
        self._engine.reset_state()

    def learning_state(self) -> dict:
        """
        Return what on-line learning carries from one sample to the next, ``{name: array}``.

        The weights, the thresholds, the dynamic state the next sample starts from
        (``state.*``, this engine's) and the position of the model's seed stream: with
        :meth:`restore_learning_state` a model of the same configuration and engine learns
        on from there as this one would, bit for bit (a training run resumed).
        """
        arrays = {'engine': np.array(self.engine_name), 'weights': self.weights,
                  'theta': self.theta, **self._seed_stream.arrays()}
        arrays.update({f'state.{k}': v for k, v in self._engine.dynamic_state().items()})
        return arrays

    def restore_learning_state(self, arrays: dict) -> None:
        """Take back what :meth:`learning_state` returned (ValueError if it does not fit)."""
        engine = str(arrays['engine'])
        if engine != self.engine_name:
            raise ValueError(f'a learning state of the {engine} engine; this model runs the '
                             f'{self.engine_name} engine')
        dynamic = {k[len('state.'):]: v for k, v in arrays.items() if k.startswith('state.')}
        stream = _SeedStream.restored(arrays)
        self._engine.restore(arrays['weights'], arrays['theta'], dynamic)
        self._seed_stream = stream

    def _source(self, inputs, timesteps, params: DynamicsParams, seed):
        """Return ``(source, T)`` for a call: the engines' input of frames or spike events."""
        check_input_kind(inputs, self.input_kinds)
        steps = check_timesteps(timesteps, inputs)
        if isinstance(inputs, SpikeEvents):
            if inputs.n_inputs != self.config.n_inputs:
                raise ValueError(f'spikes have {inputs.n_inputs} inputs, the model '
                                 f'{self.config.n_inputs}')
            return inputs, steps
        images = np.asarray(inputs)
        levels = log_q = None
        if images.dtype == np.uint8 and images.ndim >= 2:
            # uint8 frames: the kernels look log(1 - p) up per sample in the 256-level table.
            levels = np.ascontiguousarray(images.reshape(images.shape[0], -1))
            rows = levels
        else:
            rows = log_q = log_no_spike(spike_probabilities(images, params.input_rate_hz,
                                                            self.config.dt_ms))
        if rows.shape[1] != self.config.n_inputs:  # before the seeds: a refused call draws none
            raise ValueError(f'images have {rows.shape[1]} pixels, the model '
                             f'{self.config.n_inputs} inputs')
        seeds = self._seeds(seed, rows.shape[0])
        if levels is not None:
            return PoissonInput(None, seeds, levels,
                                self._log_q_table(params.input_rate_hz)), steps
        return PoissonInput(log_q, seeds), steps

    def _exit_votes(self) -> tuple:
        """Return :func:`class_votes` of the readout (made once per readout, not per call)."""
        current = self.readout  # read once: another thread may assign a new readout
        readout, votes = self._votes
        if readout is not current:
            votes = class_votes(current.assignments, self.config.n_classes)
            self._votes = (current, votes)
        return votes

    def _seeds(self, seed, n: int) -> np.ndarray:
        """
        Return ``n`` SplitMix64 seeds as :func:`encoding.draw_seeds` draws them, faster.

        From the model's stream (``seed`` None), as given (:class:`.inputs.SampleSeeds`) or
        from ``np.random.default_rng(seed)``. For
        full-range uint64, ``Generator.integers`` returns the bit generator's raw 64-bit
        outputs (numpy's ``random_bounded_uint64_fill``), so those are drawn directly (20 us
        less per call). The seeds of an int ``seed`` are kept (a sweep repeats its seeds at
        every T): seeding a generator costs another 35 us.
        """
        if seed is None:
            return self._seed_stream.take(n)
        if isinstance(seed, SampleSeeds):
            if len(seed) != n:
                raise ValueError(f'{len(seed)} sample seeds for {n} inputs')
            return seed.values
        if not isinstance(seed, (int, np.integer)):
            return _raw_seeds(np.random.default_rng(seed), n)
        key = (int(seed), n)
        seeds = self._seed_cache.get(key)
        if seeds is None:
            if len(self._seed_cache) >= 4 * self._CACHE_SIZE:
                self._seed_cache.clear()
            seeds = _raw_seeds(np.random.default_rng(seed), n)
            self._seed_cache[key] = seeds
        return seeds.copy()

    def learn(self, inputs: Inputs, *, timesteps: int,
              params: Optional[DynamicsParams] = None,
              seed: Optional[int] = None) -> LearnResult:
        """
        Learn online from samples one after the other (labels are not needed).

        Parameters
        ----------
        inputs
            frames ``[B, 28, 28]`` (or ``[B, n_inputs]``), uint8 or float in [0, 1], Poisson
            coded at ``params.input_rate_hz``; or explicit input spikes
            (:class:`~topspark_ros.core.inputs.SpikeEvents` of ``timesteps`` steps).
        timesteps
            ``T``, steps per sample.
        params
            dynamics for this call (default: the model's).
        seed
            seed for the Poisson input spikes of this call (default: the model's stream), or
            each input's own (:class:`~topspark_ros.core.inputs.SampleSeeds`).

        """
        params = self.params if params is None else params
        if self._one_frame(inputs, timesteps):
            counts, ops = self._engine.learn_frame(
                inputs.reshape(1, -1), self._seeds(seed, 1),
                self._log_q_table(params.input_rate_hz), timesteps, self._constants(params))
            return LearnResult(exc_spike_counts=counts, ops=EngineCounts.of_one_sample(ops),
                               timesteps=timesteps)
        source, steps = self._source(inputs, timesteps, params, seed)
        counts, ops = self._engine.learn(source, steps, self._constants(params))
        return LearnResult(exc_spike_counts=counts, ops=EngineCounts.from_matrix(ops),
                           timesteps=steps)

    def infer(self, inputs: Inputs, *, timesteps: int, params: Optional[DynamicsParams] = None,
              early_exit: Optional[EarlyExit] = None,
              seed: Optional[int] = None) -> InferenceResult:
        """
        Classify a batch with learning off (nothing in the model changes).

        Arguments as in :meth:`learn`; ``early_exit`` stops each sample once its class is
        decided (needs the readout, see :mod:`topspark_ros.core.topspark.early_exit`). The
        evidence is the excitatory spike counts ``int64 [B, N]``; with a readout, the scores
        and predictions are its default vote (``all_activity``; another vote:
        ``model.readout.predict(result.evidence, vote)``).
        """
        params = self.params if params is None else params
        if early_exit is None and self._one_frame(inputs, timesteps):
            return self._infer_frame(inputs, timesteps, params, seed)
        source, steps = self._source(inputs, timesteps, params, seed)
        exit_rule = None
        if early_exit is not None:
            if self.readout is None:
                raise ValueError('early exit needs assigned labels (assign_labels first)')
            exit_rule = ExitRule(*self._exit_votes(), float(early_exit.margin),
                                 int(early_exit.min_steps))
        vote = None if self.readout is None else self.readout.vote_tables
        counts, ops, used, scores = self._engine.infer(source, steps, self._constants(params),
                                                       exit_rule, vote)
        predicted = None
        if scores is not None:
            predicted = predicted_classes(scores)
        return InferenceResult(evidence=counts, timesteps_used=used,
                               ops=EngineCounts.from_matrix(ops), scores=scores,
                               predicted=predicted)

    def _one_frame(self, inputs, timesteps) -> bool:
        """
        Return whether a call takes the short path of one frame (a camera stream's call).

        One C-contiguous uint8 frame of this model's size and a valid int ``timesteps``: the
        checks the general path makes, done for this one form (the dtype by identity first).
        """
        return type(inputs) is np.ndarray \
            and (inputs.dtype is _UINT8 or inputs.dtype == _UINT8) \
            and inputs.ndim >= 2 and inputs.shape[0] == 1 \
            and inputs.size == self.config.n_inputs and inputs.flags.c_contiguous \
            and type(timesteps) is int and timesteps >= 1

    def _infer_frame(self, frame: np.ndarray, timesteps: int, params: DynamicsParams,
                     seed) -> InferenceResult:
        """
        :meth:`infer` of one C-contiguous uint8 frame, no early exit (checked by the caller).

        A camera stream's call, without the general path's objects (the input's checks, a
        :class:`PoissonInput`, a copy of the counts): at ``T`` = 32 they were a tenth of the
        call. The same draws and results as the general path.
        """
        levels = frame.reshape(1, -1)
        seeds = self._seeds(seed, 1)
        vote = None if self.readout is None else self.readout.vote_tables
        counts, ops, used, scores = self._engine.infer_frame(
            levels, seeds, self._log_q_table(params.input_rate_hz), timesteps,
            self._constants(params), vote)
        return InferenceResult.from_fields(counts, used, EngineCounts.of_one_sample(ops), scores,
                                           None if scores is None else predicted_classes(scores))

    @property
    def n_classes(self) -> int:
        """Return the number of classes of the readout."""
        return self.config.n_classes

    def ann_ops(self) -> OpCounts:
        """
        Return the operation counts per input of the same network as an ANN.

        The dense input layer as a matrix-vector product (``n_inputs * N`` MACs) plus the
        readout (each neuron's activation weighted into its assigned class: ``N`` MACs).
        Lateral inhibition becomes the readout's arg-max, which is not counted.
        """
        n = self.config.n_neurons
        return OpCounts(macs=float(self.config.n_inputs * n + n))

    @property
    def knobs(self) -> Tuple[Knob, ...]:
        """Return the enhancement knobs of this network, for its simulation step ``dt_ms``."""
        return stdp_knobs(self.config.dt_ms)

    @property
    def input_spec(self) -> FrameSpec:
        """
        Return the input frame: a grayscale square of ``n_inputs`` pixels (28 x 28).

        For an event model, the model input size of its event encoding (one channel).
        """
        if self.event_encoding is not None:
            return FrameSpec(self.event_encoding.height, self.event_encoding.width, 1)
        side = math.isqrt(self.config.n_inputs)
        if side * side != self.config.n_inputs:
            raise ValueError(f'{self.config.n_inputs} inputs are not a square image')
        return FrameSpec(side, side, 1)

    def params_for_values(self, values) -> DynamicsParams:
        """Return the model's dynamics with ``values`` (name -> number) applied."""
        known = {f.name for f in fields(DynamicsParams)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f'unknown dynamics parameters: {", ".join(sorted(unknown))}')
        return self.params.replace(**{k: float(v) for k, v in values.items()})

    def assign_labels(self, inputs: Inputs, labels: np.ndarray, *, timesteps: int,
                      params: Optional[DynamicsParams] = None,
                      seed: Optional[int] = None) -> Readout:
        """Set (and return) the readout from labelled samples, running inference on them."""
        result = self.infer(inputs, timesteps=timesteps, params=params, seed=seed)
        self.readout = assign_labels(result.evidence, labels, self.config.n_classes)
        return self.readout

    def untrained(self, *, n_neurons: int, seed: int,
                  params: DynamicsParams) -> 'DiehlCookNetwork':
        """
        Return a new, untrained network of this structure (the enhancement's scoring runs).

        ``n_neurons`` excitatory neurons, initial weights and input-spike stream from ``seed``,
        ``params`` its own dynamics, this network's event encoding; on the CPU, without a
        readout.
        """
        return DiehlCookNetwork(replace(self.config, n_neurons=int(n_neurons), seed=int(seed)),
                                params, event_encoding=self.event_encoding)

    def default_event_encoding(self) -> EventEncoding:
        """
        Return the encoding events are given to this network in.

        Its own (trained on events), else ``'merge'`` spike trains at its input size on the
        training-free centred crop (the network consumes spike trains anyway: a documented
        but untrained use; its sensor size then plays no role, as
        :meth:`~topspark_ros.core.events.encode.EventEncoding.geometry` is given the live
        sensor).
        """
        if self.event_encoding is not None:
            return self.event_encoding
        spec = self.input_spec
        return EventEncoding('spike_trains', spec.width, spec.height, spec.height, spec.width,
                             'merge')

    def checkpoint_payload(self) -> tuple:
        """
        Return ``(meta, tensors)`` for :func:`topspark_ros.core.checkpoint.save_checkpoint`.

        ``meta`` holds the config and default params (and ``event_encoding`` for a model
        trained on events); ``tensors`` the numpy arrays ``weights``, ``theta`` and, when
        labels are assigned, ``class_rates`` and ``assignments``.
        """
        tensors = {'weights': self.weights, 'theta': self.theta}
        if self.readout is not None:
            tensors['class_rates'] = np.asarray(self.readout.class_rates, np.float64)
            tensors['assignments'] = np.asarray(self.readout.assignments, np.int64)
        meta = {'config': self.config.to_dict(), 'params': self.params.to_dict()}
        if self.event_encoding is not None:
            meta['event_encoding'] = self.event_encoding.to_dict()
        return meta, tensors

    @staticmethod
    def checkpoint_shapes(meta: dict) -> dict:
        """Return ``{tensor name: shape}`` a checkpoint with model metadata ``meta`` holds."""
        config = STDPConfig.from_dict(dict(meta['config']))
        n = config.n_neurons
        return {'weights': (config.n_inputs, n), 'theta': (n,),
                'class_rates': (n, config.n_classes), 'assignments': (n,)}

    @classmethod
    def from_checkpoint(cls, meta: dict, tensors: dict, device: str = 'cpu',
                        engine: Optional[str] = None) -> 'DiehlCookNetwork':
        """
        Rebuild a model from :meth:`checkpoint_payload` output (``ValueError`` if bad).

        Class assignments must lie in ``[-1, n_classes)`` (-1: a neuron that never fired).
        """
        config = STDPConfig.from_dict(dict(meta['config']))
        params = DynamicsParams.from_dict(dict(meta['params']))
        encoding = None
        if meta.get('event_encoding') is not None:
            encoding = EventEncoding.from_dict(dict(meta['event_encoding']))
        missing = {'weights', 'theta'} - set(tensors)
        if missing:
            raise ValueError(f'missing tensors: {sorted(missing)}')
        readout = None
        if 'class_rates' in tensors or 'assignments' in tensors:
            rates = np.asarray(tensors.get('class_rates'))
            assignments = np.asarray(tensors.get('assignments'))
            if rates.shape != (config.n_neurons, config.n_classes) or \
                    assignments.shape != (config.n_neurons,):
                raise ValueError(f'readout tensors have shapes {rates.shape} and '
                                 f'{assignments.shape}, expected '
                                 f'({config.n_neurons}, {config.n_classes}) and '
                                 f'({config.n_neurons},)')
            if assignments.size and not (-1 <= assignments.min()
                                         and assignments.max() < config.n_classes):
                raise ValueError(f'class assignments must lie in [-1, {config.n_classes}), '
                                 f'got {assignments.min()}..{assignments.max()}')
            readout = Readout(class_rates=rates.astype(np.float64),
                              assignments=assignments.astype(np.int64))
        return cls(config, params, device=device, engine=engine, weights=tensors['weights'],
                   theta=tensors['theta'], readout=readout, event_encoding=encoding)
