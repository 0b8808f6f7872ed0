"""
Dense torch engine of the Diehl & Cook (2015) network: the reference and the GPU path.

It computes exactly the step of :mod:`topspark_ros.core.stdp` with dense tensors in the
``[T, B, n_inputs]`` spike layout, on any torch device. It takes the same input events as the
numba engine (Poisson trains are drawn by :func:`topspark_ros.core.stdp.rng.poisson_batch` on the
CPU from the same seeds). Neuron state and traces are float64; the weights are stored
float32 and every weight update is computed in float64 and rounded, as in the numba kernels.
Column sums use ``cumsum`` so that on the CPU they add in the same order as the kernels.

The input current is a float64 matrix product here: exact, because a float64 sum of float32
weights of similar magnitude needs no rounding. The numba engine adds it in float32 (about
1e-7 relative error, see :func:`topspark_ros.core.stdp.kernels._input_current`), so the engines
can differ only where a membrane potential lands within that error of its threshold: rare
(none in the tests' realistic batches), and then one spike moves. Everything else (inhibition,
thresholds, STDP, normalisation) is computed identically, so with the same spikes the two
engines give bit-identical weights and thresholds.
"""

from typing import Optional

import numpy as np

from topspark_ros.core.inputs import SpikeEvents
from topspark_ros.core.stdp import kernels
from topspark_ros.core.stdp.engine import _restored, Engine, SimulationConstants
from topspark_ros.core.stdp.rng import poisson_batch
import torch


class _State:
    """Dynamic state of ``B`` samples, tensors ``[B, N]`` (``last_pre``: ``[B, n_inputs]``)."""

    def __init__(self, n_samples: int, n_in: int, n: int, par: np.ndarray,
                 device: torch.device) -> None:
        """Create the state at rest."""
        f64 = {'dtype': torch.float64, 'device': device}
        i64 = {'dtype': torch.int64, 'device': device}
        self.v = torch.full((n_samples, n), float(par[kernels.P_V_REST]), **f64)
        self.v_inh = torch.full((n_samples, n), float(par[kernels.P_INH_REST]), **f64)
        self.refr = torch.zeros((n_samples, n), **i64)
        self.refr_inh = torch.zeros((n_samples, n), **i64)
        self.last_pre = torch.full((n_samples, n_in), kernels.NEVER, **i64)
        self.last_post = torch.full((n_samples, n), kernels.NEVER, **i64)
        self.prev_exc = torch.zeros((n_samples, n), **f64)
        self.prev_inh = torch.zeros((n_samples, n), **f64)


def _trace(table: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
    """Return ``table[age]``, 0 where ``age`` is past the table."""
    last = table.shape[0] - 1
    zero = torch.zeros((), dtype=table.dtype, device=table.device)
    return torch.where(age <= last, table[age.clamp(0, last)], zero)


def normalise_columns(w: torch.Tensor, norm: float, w_max: float) -> None:
    """Torch twin of :func:`topspark_ros.core.stdp.normalise.normalise_columns` (in place)."""
    wd = w.double()
    sums = wd.cumsum(0)[-1]
    peaks = wd.max(0).values
    scale = torch.where(sums > 0, norm / sums, torch.ones_like(sums))
    fits = (sums > 0) & (peaks * scale <= w_max)
    scale = torch.where(fits, scale, torch.ones_like(sums))
    for j in torch.nonzero(~fits).flatten().tolist():
        wd[:, j] = _water_fill(wd[:, j], norm, w_max)
    w.copy_((wd * scale).float())


def _water_fill(col: torch.Tensor, norm: float, w_max: float) -> torch.Tensor:
    """Return ``col`` rescaled to sum ``norm`` with weights capped at ``w_max`` (float64)."""
    col = col.clone()
    capped = torch.zeros_like(col, dtype=torch.bool)
    while True:
        free_sum = float(torch.where(capped, torch.zeros_like(col), col).cumsum(0)[-1])
        n_capped = int(capped.sum())
        budget = norm - n_capped * w_max
        if free_sum <= 0.0 or budget <= 0.0:
            n_free = col.shape[0] - n_capped
            fill = min(max(budget, 0.0) / n_free, w_max) if n_free > 0 else 0.0
            col = torch.where(capped, col, torch.full_like(col, fill))
            break
        scale = budget / free_sum
        newly = ~capped & (col * scale >= w_max)
        if not bool(newly.any()):
            col = torch.where(capped, col, (col * scale).float().double())
            break
        capped |= newly
    return torch.where(capped, torch.full_like(col, w_max), col)


class TorchEngine(Engine):
    """Dense torch engine: owns the weights ``[n_inputs, N]``, theta ``[N]`` and the state."""

    def __init__(self, weights: np.ndarray, theta: np.ndarray, device: str) -> None:
        """Copy ``weights`` (float32) and ``theta`` (float64) to ``device``."""
        self.device = torch.device(device)
        self.w = torch.as_tensor(np.array(weights, np.float32), device=self.device)
        self.th = torch.as_tensor(np.array(theta, np.float64), device=self.device)
        self._state = None

    def weights(self) -> np.ndarray:
        """Return a copy of the weights, ``float32 [n_inputs, N]``."""
        return self.w.cpu().numpy().copy()

    def theta(self) -> np.ndarray:
        """Return a copy of the adaptive thresholds, ``float64 [N]``."""
        return self.th.cpu().numpy().copy()

    def reset_state(self) -> None:
        """Forget the dynamic state carried between learning samples ('rest' mode)."""
        self._state = None

    def dynamic_state(self) -> dict:
        """Return copies of the :class:`_State` learning carries, as numpy arrays."""
        if self._state is None:
            return {}
        return {name: value.cpu().numpy().copy() for name, value in vars(self._state).items()}

    def restore(self, weights: np.ndarray, theta: np.ndarray, dynamic: dict) -> None:
        """Set what :meth:`weights`, :meth:`theta` and :meth:`dynamic_state` returned."""
        w, th = _restored(weights, self.w, 'weights'), _restored(theta, self.th, 'theta')
        state = None
        if dynamic:
            n_in, n = self.w.shape
            state = _State(1, n_in, n, np.zeros(kernels.N_PAR), self.device)
            if set(dynamic) != set(vars(state)):
                raise ValueError(f'a learning state of {sorted(dynamic)}, not the torch '
                                 f"engine's {sorted(vars(state))}")
            for name, like in vars(state).items():
                setattr(state, name, torch.as_tensor(
                    _restored(dynamic[name], like, name), device=self.device).to(like.dtype))
        self.w = torch.as_tensor(w, device=self.device).float()  # everything checked
        self.th = torch.as_tensor(th, device=self.device).double()
        self._state = state

    def _dense(self, source, timesteps: int) -> torch.Tensor:
        """Return the input spikes of ``source`` as ``float64 [T, B, n_inputs]`` on the device."""
        if not isinstance(source, SpikeEvents):
            pixels, row_ptr = poisson_batch(source.log_q_rows(), timesteps, source.seeds)
            source = SpikeEvents(pixels=pixels, row_ptr=row_ptr, n_inputs=self.w.shape[0])
        return torch.as_tensor(source.to_dense(), device=self.device).double()

    def _tables(self, const):
        """Return the trace tables as float64 tensors on the device."""
        return tuple(torch.as_tensor(t, device=self.device)
                     for t in (const.tab_pre, const.tab_post1, const.tab_post2))

    def learn(self, source, timesteps: int, const: SimulationConstants) -> tuple:
        """Learn from the samples of ``source`` one after the other; return ``(counts, ops)``."""
        with self.scaled_theta(const.theta_scale, learning=True):
            return self._learn(source, timesteps, const)

    def _learn(self, source, timesteps: int, const: SimulationConstants) -> tuple:
        """Do :meth:`learn` with the thresholds in ``th`` as the call sees them."""
        spikes = self._dense(source, timesteps)
        n_in, n = self.w.shape
        n_samples = spikes.shape[1]
        rest_steps = int(const.ipar[kernels.I_REST_STEPS])
        tables = self._tables(const)
        counts = torch.zeros((n_samples, n), dtype=torch.int64, device=self.device)
        ops = torch.zeros((n_samples, kernels.N_OPS), dtype=torch.int64, device=self.device)
        if self._state is None:
            self._state = _State(1, n_in, n, const.par, self.device)
        rest = torch.zeros((rest_steps, 1, n_in), dtype=torch.float64, device=self.device)
        for b in range(n_samples):
            if rest_steps == 0:
                self._state = _State(1, n_in, n, const.par, self.device)
            self._simulate(self._state, self.th, spikes[:, b:b + 1], True, const, tables,
                           counts[b:b + 1], ops[b:b + 1])
            normalise_columns(self.w, const.norm, float(const.par[kernels.P_W_MAX]))
            if rest_steps > 0:
                self._simulate(self._state, self.th, rest, True, const, tables,
                               torch.zeros_like(counts[b:b + 1]), ops[b:b + 1])
        return counts.cpu().numpy(), ops.cpu().numpy()

    def infer(self, source, timesteps: int, const: SimulationConstants,
              exit_rule: Optional[kernels.ExitRule] = None, vote: Optional[tuple] = None
              ) -> tuple:
        """
        Run the samples of ``source`` as one batch, learning off (see :meth:`Engine.infer`).

        Early exit as in :func:`kernels.simulate`; the scores of ``vote`` are counted on the
        CPU from the spike counts. The engine is only read: the call's state and scaled
        thresholds are its own, so concurrent calls on one model are safe (they were swapped
        into the engine for the call: another call saw them, and one was left behind for
        learning).
        """
        th = self.th if const.theta_scale == 1.0 else self.th * const.theta_scale
        counts, ops, steps_used = self._infer(source, timesteps, const, exit_rule, th)
        return counts, ops, steps_used, self.vote_scores(counts, vote)

    def _infer(self, source, timesteps: int, const: SimulationConstants,
               exit_rule: Optional[kernels.ExitRule], th: torch.Tensor) -> tuple:
        """Do :meth:`infer` with the thresholds ``th`` as the call sees them."""
        spikes = self._dense(source, timesteps)
        n_in, n = self.w.shape
        n_samples = spikes.shape[1]
        counts = torch.zeros((n_samples, n), dtype=torch.int64, device=self.device)
        ops = torch.zeros((n_samples, kernels.N_OPS), dtype=torch.int64, device=self.device)
        steps_used = torch.full((n_samples,), spikes.shape[0], dtype=torch.int64,
                                device=self.device)
        state = _State(n_samples, n_in, n, const.par, self.device)
        self._simulate(state, th, spikes, False, const, self._tables(const), counts, ops,
                       exit_rule=exit_rule, steps_used=steps_used)
        return counts.cpu().numpy(), ops.cpu().numpy(), steps_used.cpu().numpy()

    def _simulate(self, st: _State, th: torch.Tensor, spikes: torch.Tensor, learning: bool,
                  const, tables, counts, ops, exit_rule=None, steps_used=None) -> None:
        """
        Advance ``st`` over ``spikes [S, B, n_inputs]`` (``B = 1`` when learning).

        ``th``: the thresholds as the call compares them; learning changes them in place.

        With ``exit_rule`` (inference only) a sample that exits stops counting: its counts and
        operations freeze and ``steps_used`` records its steps.
        """
        par, ipar = const.par, const.ipar
        tab_pre, tab_post1, tab_post2 = tables
        n_in, n = self.w.shape
        populations = bool(ipar[kernels.I_POPULATIONS])
        w64 = None if learning else self.w.double()
        neg_inf = torch.tensor(-float('inf'), dtype=torch.float64, device=self.device)
        alive = torch.ones(spikes.shape[1], dtype=torch.int64, device=self.device)
        evidence = votes = None
        if exit_rule is not None:
            exit_class, exit_weight, margin, min_steps = exit_rule
            n_cls = int(max(exit_class.max(), 0)) + 1
            votes = torch.zeros((n, n_cls), dtype=torch.float64, device=self.device)
            known = exit_class >= 0
            votes[torch.as_tensor(known.nonzero()[0], device=self.device),
                  torch.as_tensor(exit_class[known], device=self.device)] = torch.as_tensor(
                      exit_weight[known], dtype=torch.float64, device=self.device)
            evidence = torch.zeros((spikes.shape[1], n_cls), dtype=torch.float64,
                                   device=self.device)
        for t in range(spikes.shape[0]):
            s_in = spikes[t]
            current = s_in @ (self.w.double() if learning else w64)
            n_pre = s_in.sum(1).long()
            k_exc = st.prev_exc.sum(1, keepdim=True)
            if populations:
                k_inh = st.prev_inh.sum(1, keepdim=True)
                current = current - par[kernels.P_W_INH] * (k_inh - st.prev_inh)
                inh_rest = par[kernels.P_INH_REST]
                vi = inh_rest + (st.v_inh - inh_rest) * par[kernels.P_INH_DECAY]
                refractory = st.refr_inh > 0
                vi_in = vi + par[kernels.P_W_EXC_INH] * st.prev_exc
                fired = ~refractory & (vi_in >= par[kernels.P_INH_THRESH])
                st.v_inh = torch.where(refractory, vi,
                                       torch.where(fired, torch.full_like(vi, par[
                                           kernels.P_INH_RESET]), vi_in))
                st.refr_inh = torch.where(refractory, st.refr_inh - 1,
                                          fired.long() * int(ipar[kernels.I_INH_REFRAC]))
                st.prev_inh = fired.double()
                ops[:, kernels.OP_INH_SPIKES] += fired.sum(1) * alive
                ops[:, kernels.OP_SYN_INHIBITION] += (
                    k_exc[:, 0] + k_inh[:, 0] * (n - 1)).long() * alive
                ops[:, kernels.OP_NEURON_UPDATES] += n * alive
            else:
                current = current - par[kernels.P_W_INH] * (k_exc - st.prev_exc)
                ops[:, kernels.OP_SYN_INHIBITION] += (k_exc[:, 0] * (n - 1)).long() * alive

            v_rest = par[kernels.P_V_REST]
            v = v_rest + (st.v - v_rest) * par[kernels.P_DECAY_V]
            if learning:
                th.mul_(par[kernels.P_DECAY_THETA])
            refractory = st.refr > 0
            v = torch.where(refractory, v, v + current)
            over = v - (par[kernels.P_V_THRESH] + th)
            crossing = ~refractory & (over >= 0)
            if ipar[kernels.I_ONE_SPIKE]:
                best = torch.where(crossing, over, neg_inf).argmax(1, keepdim=True)
                fire = torch.zeros_like(crossing).scatter_(1, best, crossing.any(1, keepdim=True))
            else:
                fire = crossing
            st.refr = torch.where(fire, torch.full_like(st.refr, int(ipar[kernels.I_REFRAC])),
                                  torch.where(refractory, st.refr - 1, st.refr))
            st.v = torch.where(fire, torch.full_like(v, par[kernels.P_V_RESET]), v)
            st.prev_exc = fire.double()
            counts += fire.long() * alive[:, None]
            n_post = fire.sum(1)
            ops[:, kernels.OP_INPUT_SPIKES] += n_pre * alive
            ops[:, kernels.OP_EXC_SPIKES] += n_post * alive
            ops[:, kernels.OP_SYN_INPUT] += n_pre * n * alive
            ops[:, kernels.OP_NEURON_UPDATES] += n * alive
            if evidence is not None:
                evidence += (fire.double() @ votes) * alive[:, None]
                if t + 1 >= min_steps and evidence.shape[1] > 1:
                    top = evidence.topk(2, dim=1).values
                    lead = top[:, 0] - top[:, 1] + kernels.EXIT_TOLERANCE
                    done = (alive > 0) & (lead >= margin) & (top[:, 0] > 0)
                    steps_used[done] = t + 1
                    alive = alive * (~done).long()
                    if not alive.any():
                        break
            if not learning:
                continue
            th.add_(par[kernels.P_THETA_PLUS] * fire[0].double())

            pre = torch.nonzero(s_in[0]).flatten()
            post = torch.nonzero(fire[0]).flatten()
            st.last_pre[0, pre] = t
            post2_before = _trace(tab_post2, t - st.last_post[0, post])
            st.last_post[0, post] = t
            # Weight updates applied (as kernels.simulate counts them): per input spike, the
            # neurons with a non-zero post trace; per potentiating spike, a column.
            if pre.numel():
                y1 = _trace(tab_post1, t - st.last_post[0])
                rows = self.w[pre].double() - par[kernels.P_NU_PRE] * y1
                self.w[pre] = rows.clamp_min(0.0).float()
                ops[:, kernels.OP_PLASTICITY] += n_pre * int((y1 > 0).sum())
            if post.numel():
                x_pre = _trace(tab_pre, t - st.last_pre[0])
                for k, j in enumerate(post.tolist()):
                    factor = float(post2_before[k]) if ipar[kernels.I_TRIPLET] else 1.0
                    if factor == 0.0:
                        continue
                    ops[:, kernels.OP_PLASTICITY] += n_in
                    col = (self.w[:, j].double()
                           + par[kernels.P_NU_POST] * (x_pre - par[kernels.P_X_TAR]) * factor)
                    self.w[:, j] = col.clamp(0.0, par[kernels.P_W_MAX]).float()

        steps = spikes.shape[0]
        horizon = max(tab_pre.shape[0], tab_post1.shape[0], tab_post2.shape[0])
        never = torch.full_like(st.last_pre, kernels.NEVER)
        st.last_pre = torch.where(steps - st.last_pre < horizon, st.last_pre - steps, never)
        never = torch.full_like(st.last_post, kernels.NEVER)
        st.last_post = torch.where(steps - st.last_post < horizon, st.last_post - steps, never)
