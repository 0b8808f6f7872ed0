r"""
The converted spiking network: the CNN's layers run with integrate-and-fire neurons for T steps.

The SNN has the weights of the trained CNN (:mod:`topspark_ros.core.converted.net`); every
hidden neuron is an integrate-and-fire (IF) neuron (:func:`if_step`) with threshold
``theta_l = s * mu_l`` (``mu_l`` the layer's trained clipping threshold, ``s =
threshold_scale``, a run-time parameter: below 1 helps at very small T), initial potential
``v_l(0) = f * theta_l`` (``f = v_init_frac``, 0.5 turns the rate code's flooring into
rounding) and soft reset (reset by subtraction). A spike carries ``theta_l``. Per step
``t = 1..T``, layers in order (no synaptic delay):

.. code-block:: text

    v_l(t) = v_l(t-1) + W_l x_{l-1}(t) + b_l          x_{l-1}(t) = theta_{l-1} s_{l-1}(t)
    s_l(t) = 1 if v_l(t) >= theta_l else 0
    v_l(t) <- v_l(t) - theta_l s_l(t)

so the rate ``theta_l * mean_t s_l(t)`` approaches ``clip(z_l, 0, theta_l)`` as T grows.
A configured leak ``beta_l`` (:attr:`ConvertedConfig.leak`) multiplies ``v_l(t-1)`` first.
The first layer takes the normalised image directly (direct/analog coding): its current
``W_1 x + b_1`` is computed once per input and integrated every step. The output layer does
not spike: it accumulates its input, and the class evidence after ``t`` steps is that sum;
``scores`` are the softmax of the evidence divided by the steps run.

Operation counts per input (for :mod:`topspark_ros.core.energy`): MACs of the analog first
layer (once: the input is constant over the steps), one accumulate per spike per synapse it
reaches (its fan-out, measured from the actual spikes), one neuron update per neuron (hidden
and output) per step. The ANN of the same network costs the MACs of every layer
(:meth:`ConvertedNetwork.ann_ops`).

Event input (a model with an ``event_encoding`` of kind ``'frames'``, ``channels`` 2: OFF and
ON event counts, see :mod:`topspark_ros.core.events.encode`): the ANN learns from the count
frame of a whole window ``c`` (the sum of its bins), normalised as ``(c - mean) / std``. The
SNN takes a window as ``T`` per-bin count frames ``c_1 .. c_T`` and feeds bin ``t`` at step
``t``, scaled by ``T``: the first layer's current at step ``t`` is
``W_1 (T c_t - mean) / std + b_1``, whose mean over the steps is the ANN's first-layer
pre-activation (the same rate-coding argument as above, now with a time-varying input). With
``mean = 0`` (what ``topspark train`` uses for events) an empty pixel sends nothing, and the
first layer is event driven: its cost is counted as accumulates, one per event per synapse
of its fan-out (the factor ``T / std`` folds into the weights), instead of MACs.
"""

from dataclasses import dataclass, fields
import math
from typing import NamedTuple, Optional, Tuple

import numpy as np

from topspark_ros.core.converted.config import ConvertedConfig, ConvertedParams, INPUT
from topspark_ros.core.converted.knobs import CONVERTED_KNOBS
from topspark_ros.core.converted.net import ConvertibleNet
from topspark_ros.core.energy import OpCounts
from topspark_ros.core.events.encode import EventEncoding, EventModelError
from topspark_ros.core.inputs import EventFrames, Inputs
from topspark_ros.core.model import (check_device, check_input_kind, check_timesteps,
                                     InferenceResult, unit_intensities)
from topspark_ros.core.preprocess import FrameSpec
import torch

MAX_INPUT_PIXELS = 4096 * 4096
"""Largest input (height x width) a checkpoint may describe (refused before allocating)."""
_EXACT_FLOAT32 = float(2 ** 24)
"""Integers below this add exactly in float32."""


class IFParameters(NamedTuple):
    """
    Parameters of one layer of integrate-and-fire neurons.

    Attributes
    ----------
    threshold
        ``theta``: firing threshold, in units of the input current (a 0-d tensor, > 0); a
        spike carries it to the next layer and the reset subtracts it.
    leak
        ``beta`` in ``(0, 1]``: factor the potential is multiplied by every step before the
        current is added (1: plain IF, no leak).

    """

    threshold: torch.Tensor
    leak: float = 1.0


class IFState(NamedTuple):
    """
    State of one layer of integrate-and-fire neurons.

    Attributes
    ----------
    v
        membrane potential ``float32 [B, *layer shape]`` (units of the input current).

    """

    v: torch.Tensor


class _Spike(torch.autograd.Function):
    """Heaviside of ``u = (v - theta) / theta`` with a triangular surrogate gradient."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * torch.clamp(1.0 - u.abs(), min=0.0)


def _masked(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Return ``x * mask``, or ``x`` itself when there is no mask (all samples active)."""
    return x if mask is None else x * mask


def if_step(current: torch.Tensor, state: IFState, p: IFParameters, *,
            mask: Optional[torch.Tensor] = None,
            surrogate: bool = False) -> Tuple[torch.Tensor, torch.Tensor, IFState]:
    r"""
    Advance a layer of integrate-and-fire neurons by one step (reset by subtraction).

    With input current ``I`` ``[B, *shape]``, ``m`` the mask (1 for a sample that still
    runs, 0 for one that has stopped; 1 everywhere when ``mask`` is None), threshold
    ``theta`` and leak ``beta`` (``p``):

    .. code-block:: text

        v' = v + m I + m (beta - 1) v       (the last term only when beta != 1)
        s  = H(v' - theta) m                H(u) = 1 if u >= 0 else 0
        v  <- v' - theta s

    A stopped sample keeps its potential and does not spike. Steps are unitless (no ``dt``:
    the converted network's time is the step count).

    Parameters
    ----------
    current
        input current ``I`` ``float32 [B, *shape]`` of this step.
    state
        the layer's state before the step.
    p
        threshold and leak of the layer.
    mask
        ``float32 [B, 1, ...]`` (broadcast over ``shape``): 1.0 running, 0.0 stopped.
    surrogate
        differentiable spikes: ``H`` of ``(v' - theta) / theta`` with the triangular
        surrogate gradient ``max(0, 1 - |v' - theta| / theta)`` (training at T).

    Returns
    -------
        ``(spikes, sent, state)``: ``s`` (``bool [B, *shape]``; ``float32`` 0/1 with
        ``surrogate``), ``theta s`` (the value the spikes carry, ``float32 [B, *shape]``) and
        the state after the step.

    """
    v = state.v
    v_new = v + _masked(current, mask)
    if p.leak != 1.0:
        v_new = v_new + _masked((p.leak - 1.0) * v, mask)
    th = p.threshold
    if surrogate:
        spikes = _masked(_Spike.apply((v_new - th) / th), mask)
        sent = spikes * th
    else:
        spikes = v_new >= th
        if mask is not None:
            spikes = spikes & (mask > 0)
        sent = torch.where(spikes, th, 0.0)
    return spikes, sent, IFState(v_new - sent)


@dataclass(frozen=True)
class ConvertedCounts:
    """
    Operation and spike counts per input (``float64 [B]`` each), for the energy model.

    Attributes
    ----------
    spikes
        spikes of all hidden IF neurons.
    macs
        multiply-accumulates of the analog first layer (once per input).
    accumulates
        synaptic accumulates: spikes times the fan-out they reach.
    neuron_updates
        neuron updates (hidden IF neurons and output accumulators, per step run).

    """

    spikes: np.ndarray
    macs: np.ndarray
    accumulates: np.ndarray
    neuron_updates: np.ndarray

    def energy_ops(self, index: int) -> OpCounts:
        """Return input ``index``'s counts as :class:`OpCounts` (no plasticity)."""
        return OpCounts(accumulates=float(self.accumulates[index]),
                        macs=float(self.macs[index]),
                        neuron_updates=float(self.neuron_updates[index]))

    def mean_energy_ops(self) -> OpCounts:
        """Return the mean over inputs of :meth:`energy_ops`."""
        n = len(self.spikes)
        if n == 0:
            return OpCounts()
        return OpCounts(accumulates=float(self.accumulates.mean()),
                        macs=float(self.macs.mean()),
                        neuron_updates=float(self.neuron_updates.mean()))

    def totals(self) -> dict:
        """Return the sums over inputs (``{name: float}``)."""
        return {f.name: float(getattr(self, f.name).sum()) for f in fields(self)}


class EvidenceReadout:
    """The readout of a converted network: the class with the largest output evidence."""

    def predict(self, evidence: np.ndarray, vote: str = 'all_activity') -> np.ndarray:
        """Return ``argmax`` of ``evidence [B, C]`` (one vote: ``vote`` is accepted, unused)."""
        return np.argmax(np.asarray(evidence), axis=1).astype(np.int64)


class ConvertedNetwork:
    """
    A CNN with trainable clipping thresholds, run as an IF spiking network (see module doc).

    The model interface of :mod:`topspark_ros.core.model`: ``infer`` with ``T`` per call and
    optional early exit, ``n_classes``, ``input_spec``, ``input_kinds``, ``knobs``,
    checkpoints.

    Parameters
    ----------
    config
        structure (fixed).
    params
        default run-time parameters; any call may pass its own.
    device
        torch device (``'cpu'`` default, ``'cuda'`` when available).
    net
        an existing :class:`ConvertibleNet` (default: a new one from ``config``).
    event_encoding
        for a network of event-camera input: its
        :class:`~topspark_ros.core.events.encode.EventEncoding` (kind ``'frames'``, the
        input size of ``config``, ``config.channels == 2``; saved in the checkpoint); None
        (default) for a network of camera frames.

    """

    checkpoint_family = 'converted'
    learns_online = False
    """Trained offline: :meth:`learn` refuses, sweeps skip the learning-step figures."""
    knobs = CONVERTED_KNOBS
    """The enhancement knobs (inference only, :mod:`~topspark_ros.core.converted.knobs`)."""

    def __init__(self, config: ConvertedConfig = ConvertedConfig(),
                 params: ConvertedParams = ConvertedParams(), *, device: str = 'cpu',
                 net: Optional[ConvertibleNet] = None, event_encoding=None) -> None:
        """Build (or adopt) the network and move it to ``device``."""
        if (event_encoding is None) != (config.channels != 2) or (
                event_encoding is not None and (
                    event_encoding.kind != 'frames'
                    or (event_encoding.height, event_encoding.width)
                    != (config.height, config.width))):
            raise ValueError('a converted network takes events exactly when it has 2 input '
                             'channels and a frames event encoding of its input size')
        self.event_encoding = event_encoding
        self.config = config
        self.params = params
        self.device = check_device(device)
        self.net = (net if net is not None else ConvertibleNet(config)).to(self.device)
        self.net.eval()
        self.readout = EvidenceReadout()
        self._fanouts = [[m.to(self.device) for m in maps] for maps in self.net.fanouts]
        self._fanout_sums = [[float(m.sum()) for m in maps] for maps in self.net.fanouts]
        # Per synapse, the MACs of one pass of its weights over its source: a fan-out map
        # counts each pooled unit once per unit of its pooling window (where a spike goes),
        # a layer of graded values pools first and computes the op once per pooled unit.
        self._op_macs = [[float(m.sum()) / s.pool ** 2 if s.op else 0.0
                          for m, s in zip(maps, syns)]
                         for maps, syns in zip(self.net.fanouts, self.net.wiring)]

    @property
    def n_classes(self) -> int:
        """Return the number of output classes."""
        return self.config.n_classes

    @property
    def input_spec(self) -> FrameSpec:
        """
        Return the input frame the network takes.

        An event network reports its input size with one channel: it takes no camera frames
        (:meth:`infer` refuses them), only polarity frames from
        :func:`topspark_ros.core.events.encode.infer_events`.
        """
        if self.event_encoding is not None:
            return FrameSpec(self.config.height, self.config.width, 1)
        return FrameSpec(self.config.height, self.config.width, self.config.channels)

    @property
    def input_kinds(self) -> tuple:
        """Return what :meth:`infer` takes: event frames (an event network), else frames."""
        return (EventFrames,) if self.event_encoding is not None else (np.ndarray,)

    def default_event_encoding(self) -> EventEncoding:
        """
        Return the network's event encoding (trained on events).

        A network of camera frames (analog grey or RGB input) takes no events: raises
        :class:`~topspark_ros.core.events.encode.EventModelError`.
        """
        if self.event_encoding is not None:
            return self.event_encoding
        raise EventModelError(
            f'this {self.checkpoint_family!r} model was trained on frames, not events, and '
            'cannot classify events; train an event model with `topspark train --dataset '
            'nmnist-synth ...` (see docs/results-events.md) or feed it camera frames')

    def params_for_values(self, values) -> ConvertedParams:
        """Return the model's parameters with ``values`` (name -> number) applied."""
        known = {f.name for f in fields(ConvertedParams)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f'unknown converted-network parameters: '
                             f'{", ".join(sorted(unknown))}')
        return self.params.replace(**{k: float(v) for k, v in values.items()})

    def learn(self, inputs: Inputs, *, timesteps: int, params=None, seed=None):
        """Refuse: converted networks are trained offline (``topspark train``), not on-line."""
        raise RuntimeError('converted networks do not learn on-line (train them offline with '
                           '`topspark train --family converted`)')

    def _event_inputs(self, frames: EventFrames) -> torch.Tensor:
        """
        Check and move event count frames to the device, normalised.

        ``[B, 2, H, W]`` (a window's count frame, the same at every step) or
        ``[B, T, 2, H, W]`` (per-bin frames, bin ``t`` at step ``t``, scaled by ``T``; see the
        module doc) -> ``[B, 2, H, W]`` or ``[B, T, 2, H, W]``.
        """
        size = (2, self.config.height, self.config.width)
        if frames.size != size:
            raise ValueError(f'this network takes event count frames [B, 2, H, W] or per-bin '
                             f'frames [B, T, 2, H, W] with (2, H, W) = {list(size)}, got '
                             f'{list(frames.counts.shape)} (encode events with '
                             'topspark_ros.core.events.encode)')
        x = torch.from_numpy(np.array(frames.counts, dtype=np.float32, copy=True)).to(self.device)
        if x.dim() == 4:
            return self.net.normalise(x)
        batch, bins = x.shape[:2]
        x = self.net.normalise((x * bins).flatten(0, 1))
        return x.view((batch, bins) + size)

    def _inputs(self, images: Inputs) -> torch.Tensor:
        """
        Check and move inputs to the device as a normalised tensor.

        ``uint8`` images ``[B, *input shape]`` (float in [0, 1]: rounded to uint8 levels first)
        or :class:`EventFrames` (:meth:`_event_inputs`).
        """
        if isinstance(images, EventFrames):
            return self._event_inputs(images)
        images = np.asarray(images)
        shape = self.input_spec.shape
        if images.ndim == len(shape):
            images = images[None]
        if tuple(images.shape[1:]) != shape and not (
                len(shape) == 2 and images.shape[1:] == (1,) + shape):
            raise ValueError(f'images have shape {list(images.shape[1:])}, the model takes '
                             f'{list(shape)}')
        if images.dtype != np.uint8:  # float in [0, 1] to uint8 levels; anything else refused
            images = np.round(unit_intensities(images) * 255.0)
        tensor = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
        return self.net.normalise(tensor.to(self.device))

    def ann_logits(self, images) -> np.ndarray:
        """Return the ANN's logits ``float32 [B, C]`` for ``uint8`` images."""
        with torch.no_grad():
            return self.net(self._inputs(images)).cpu().numpy()

    def ann_ops(self) -> OpCounts:
        """
        Return the ANN's operation counts per input: the MACs of every layer's weights.

        A convolution or linear map after a pooling counts once per pooled unit (a spike's
        fan-out counts once per unit of the window). Pooling's and residual connections'
        additions are not counted, nor activation functions: a lower bound on the ANN.
        """
        return OpCounts(macs=sum(sum(layer) for layer in self._op_macs))

    def run_snn(self, x: torch.Tensor, timesteps: int, params: ConvertedParams, *,
                early_exit=None, surrogate: bool = False) -> tuple:
        """
        Run the SNN on normalised inputs ``x [B, C, H, W]`` for up to ``timesteps`` steps.

        ``x [B, T, C, H, W]`` (event models, normalised per-bin frames from :meth:`_inputs`)
        feeds frame ``t`` at step ``t``; the caller checked that ``T`` equals ``timesteps``
        (:func:`~topspark_ros.core.model.check_timesteps`).
        Differentiable when ``surrogate`` (training at T). Returns ``(evidence [B, C],
        steps_used int64 [B], spikes, accumulates, neuron_updates)``, tensors on the device
        (counts ``float64 [B]``).
        """
        net = self.net
        wiring = net.wiring
        last = len(wiring) - 1
        batch = x.shape[0]
        theta = net.mu() * params.threshold_scale
        if not surrogate:
            theta = theta.detach()
        sequence = x.dim() == 5
        const = [sum((net.apply_synapse(s, x[:, 0] if sequence else x)
                      for s in syns if s.source == INPUT),
                     torch.zeros((), device=x.device)) for syns in wiring]
        state = [IFState(params.v_init_frac * theta[layer]
                         * torch.ones((batch,) + net.shapes[layer], device=x.device))
                 for layer in range(last)]
        evidence = torch.zeros(batch, self.config.n_classes, device=x.device)
        active = torch.ones(batch, dtype=torch.bool, device=x.device)
        steps = torch.zeros(batch, dtype=torch.int64, device=x.device)
        spikes = torch.zeros(batch, dtype=torch.float64, device=x.device)
        accumulates = torch.zeros(batch, dtype=torch.float64, device=x.device)
        n_neurons = float(sum(math.prod(s) for s in net.shapes))
        leak = self.config.leak or (1.0,) * last
        # Each layer's IF parameters, made once for inference; training selects theta_l anew
        # every step (the graph its gradients are summed over stays as it was).
        layer_params = None if surrogate else [IFParameters(theta[layer], leak[layer])
                                               for layer in range(last)]
        margin = None if early_exit is None else float(early_exit.margin)
        floor = 0 if early_exit is None else int(early_exit.min_steps)
        # Bookkeeping at the least cost per step, with the same results: without early exit
        # every sample is active at every step, so the activity masks (all ones, x * 1 == x)
        # are left out; for frame input each neuron's spikes are summed over the steps
        # (integers up to T, exact) and reduced once at the end, the accumulates from those
        # sums (spikes times fan-out is linear in the spikes; exact integers in float64).
        # Per-bin event input keeps its per-step float sums (their order decides the last bits).
        masked = margin is not None
        deferred = not sequence
        totals = [torch.zeros((batch,) + net.shapes[layer], device=x.device)
                  for layer in range(last)] if deferred else None
        done = 0
        for t in range(int(timesteps)):
            act = active.to(x.dtype) if masked or not deferred else None
            mask = None
            if sequence:
                x_t = x[:, t]
                if t:
                    const = [sum((net.apply_synapse(s, x_t) for s in syns
                                  if s.source == INPUT), torch.zeros((), device=x.device))
                             for syns in wiring]
                accumulates = accumulates + (
                    self._input_events(x_t, int(timesteps)) * act).to(torch.float64)
            out, sent = {}, {}
            for layer, syns in enumerate(wiring):
                current = const[layer]
                for k, syn in enumerate(syns):
                    if syn.source == INPUT:
                        continue
                    s = out[syn.source]
                    # Inference sends what the IF step made (theta s, made once per layer);
                    # training multiplies anew per synapse, each a gradient path of its own.
                    current = current + net.apply_synapse(
                        syn, s * theta[syn.source] if surrogate else sent[syn.source])
                    if not deferred:
                        # Exact in float32: at most 2^24 accumulates per input, layer, step.
                        reached = (s.detach() * self._fanouts[layer][k]).flatten(1).sum(1)
                        accumulates = accumulates + (reached * act).to(torch.float64)
                if layer == last:
                    evidence = evidence + (current * act.view(-1, 1) if masked else current)
                    continue
                if masked:
                    mask = act.view((-1,) + (1,) * (current.dim() - 1))
                p = IFParameters(theta[layer], leak[layer]) if surrogate else layer_params[layer]
                s, sent[layer], state[layer] = if_step(current, state[layer], p, mask=mask,
                                                       surrogate=surrogate)
                out[layer] = s
                if deferred:
                    totals[layer] += s.detach()
                else:
                    spikes = spikes + s.detach().flatten(1).sum(1).to(torch.float64)
            done = t + 1
            if masked:
                steps = steps + active.to(torch.int64)
            if margin is not None and t + 1 >= floor:
                top2 = torch.topk(evidence.detach(), min(2, evidence.shape[1]), dim=1).values
                lead = top2[:, 0] - (top2[:, 1] if top2.shape[1] > 1 else 0.0)
                active = active & ~(lead >= margin)
                if not bool(active.any()):
                    break
        if not masked:
            steps = torch.full((batch,), done, dtype=torch.int64, device=x.device)
        if deferred:
            # Sums of integers: exact in float32 while every partial sum stays below 2^24
            # (bounded by steps x neurons, steps x fan-out), else taken in float64.
            for layer, n in enumerate(totals):
                if done * math.prod(net.shapes[layer]) >= _EXACT_FLOAT32:
                    n = n.to(torch.float64)
                spikes = spikes + n.flatten(1).sum(1).to(torch.float64)
            for layer, syns in enumerate(wiring):
                for k, syn in enumerate(syns):
                    if syn.source != INPUT:
                        n = totals[syn.source]
                        if done * self._fanout_sums[layer][k] >= _EXACT_FLOAT32:
                            n = n.to(torch.float64)
                        reached = (n * self._fanouts[layer][k]).flatten(1).sum(1)
                        accumulates = accumulates + reached.to(torch.float64)
        updates = steps.to(torch.float64) * n_neurons
        return evidence, steps, spikes, accumulates, updates

    def _input_events(self, x_t: torch.Tensor, bins: int) -> torch.Tensor:
        """
        Return ``[B]``: events of one normalised bin frame times their first-layer fan-out.

        The count of a pixel is recovered as ``(x std + mean) / T`` (see :meth:`_inputs`).
        """
        net = self.net
        counts = ((x_t.detach() * net.std + net.mean) / bins).clamp(min=0.0)
        total = torch.zeros(x_t.shape[0], device=x_t.device)
        for maps, syns in zip(self._fanouts, net.wiring):
            for m, s in zip(maps, syns):
                if s.source == INPUT:
                    total = total + (counts * m).flatten(1).sum(1)
        return total

    def infer(self, inputs: Inputs, *, timesteps: int, params=None, early_exit=None,
              seed=None) -> InferenceResult:
        """
        Classify a batch with the SNN for ``timesteps`` steps.

        ``inputs``: ``uint8`` images ``[B, *input_spec.shape]``; an event network takes
        :class:`~topspark_ros.core.inputs.EventFrames` instead, per-bin count frames of
        ``timesteps`` bins or one count frame held over the steps (see :meth:`_event_inputs`).
        ``params``: :class:`ConvertedParams` for this call (default: the model's);
        ``early_exit``: an :class:`topspark_ros.core.topspark.early_exit.EarlyExit` (margin in
        units of the summed output evidence, never before ``min_steps``, never after ``T``).
        ``seed`` is unused: the SNN is deterministic. The evidence is the output layer's input
        summed over the steps run, ``float64 [B, C]``; the scores its softmax per step.
        """
        check_input_kind(inputs, self.input_kinds)
        steps = check_timesteps(timesteps, inputs)
        params = self.params if params is None else params
        x = self._inputs(inputs)
        with torch.no_grad():
            evidence, used, spikes, acc, updates = self.run_snn(
                x, steps, params, early_exit=early_exit)
        first_macs = sum(macs for layer, syns in zip(self._op_macs, self.net.wiring)
                         for macs, s in zip(layer, syns) if s.source == INPUT)
        if x.dim() == 5:
            first_macs = 0.0  # event input: counted as accumulates in run_snn
        evidence = evidence.to(torch.float64).cpu().numpy()
        used = used.cpu().numpy().astype(np.int64)
        mean = evidence / np.maximum(used, 1)[:, None]
        exp = np.exp(mean - mean.max(axis=1, keepdims=True))
        ops = ConvertedCounts(spikes=spikes.cpu().numpy(),
                              macs=np.full(len(used), first_macs),
                              accumulates=acc.cpu().numpy(),
                              neuron_updates=updates.cpu().numpy())
        return InferenceResult(evidence=evidence, timesteps_used=used, ops=ops,
                               scores=exp / exp.sum(axis=1, keepdims=True),
                               predicted=np.argmax(evidence, axis=1).astype(np.int64))

    def checkpoint_payload(self) -> tuple:
        """Return ``(meta, tensors)``: config and params; the state dict as numpy arrays."""
        # safetensors stores 0-d arrays as [1]: thresholds are saved as [1] and reshaped back.
        tensors = {name: np.atleast_1d(value.detach().cpu().numpy())
                   for name, value in self.net.state_dict().items()}
        meta = {'config': self.config.to_dict(), 'params': self.params.to_dict()}
        if self.event_encoding is not None:
            meta['event_encoding'] = self.event_encoding.to_dict()
        return meta, tensors

    @staticmethod
    def checkpoint_shapes(meta: dict) -> dict:
        """
        Return ``{tensor name: shape}`` a checkpoint with model metadata ``meta`` holds.

        The network is built on torch's ``meta`` device: shapes only, nothing allocated.
        Inputs of more than :data:`MAX_INPUT_PIXELS` pixels are refused (``ValueError``).
        """
        config = ConvertedConfig.from_dict(dict(meta['config']))
        if config.height * config.width > MAX_INPUT_PIXELS:
            raise ValueError(f'input {config.height}x{config.width} has more than '
                             f'{MAX_INPUT_PIXELS} pixels')
        with torch.device('meta'):
            net = ConvertibleNet(config)
        # 0-d tensors (thresholds) are stored as [1] (see checkpoint_payload).
        return {name: tuple(value.shape) or (1,) for name, value in net.state_dict().items()}

    @classmethod
    def from_checkpoint(cls, meta: dict, tensors: dict,
                        device: str = 'cpu') -> 'ConvertedNetwork':
        """Rebuild from :meth:`checkpoint_payload` output (``ValueError`` when inconsistent)."""
        config = ConvertedConfig.from_dict(dict(meta['config']))
        params = ConvertedParams.from_dict(dict(meta['params']))
        encoding = None
        if meta.get('event_encoding') is not None:
            encoding = EventEncoding.from_dict(dict(meta['event_encoding']))
        net = ConvertibleNet(config)
        expected = net.state_dict()
        if set(expected) != set(tensors):
            raise ValueError(f'tensors {sorted(tensors)} do not match the architecture '
                             f'{sorted(expected)}')
        state = {}
        for name, value in tensors.items():
            shape = tuple(expected[name].shape)
            if tuple(value.shape) != shape and not (shape == () and value.shape == (1,)):
                raise ValueError(f'tensor {name} has shape {list(value.shape)}, expected '
                                 f'{list(shape)}')
            state[name] = torch.from_numpy(np.array(value, dtype=np.float32).reshape(shape))
        net.load_state_dict(state)
        return cls(config, params, device=device, net=net, event_encoding=encoding)
