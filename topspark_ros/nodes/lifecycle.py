"""
The base of the product's lifecycle nodes: a transition the state does not allow is refused.

rclpy 7.1 (Jazzy) answers ``~/change_state`` in ``LifecycleNodeMixin.__on_change_state``. A
request by label that the current state does not offer is refused there (``success=false``),
but a request by id goes straight to ``LifecycleStateMachine.trigger_transition_by_id``, which
raises ``RCLError`` ("Transition is not registered") for every id the current state has no
transition for: activate without configure, configure twice, deactivate while inactive,
activate while active, ids 0 (create), 8 (destroy) or 99, anything once finalized. The
exception leaves the service callback, the executor re-raises it from ``spin_once`` and the
process's spin loop ended (and, in ``topspark bringup``, with it every node of the process).

:class:`LifecycleNode` checks each request against the transitions the current state offers
(``~/get_available_transitions``) before rclpy sees it: one that is not offered is answered
``success=false`` with the state unchanged and a warning saying what the state allows; the
process keeps running.

It also keeps the bond nav2's ``lifecycle_manager`` expects of a node it activates (see
:mod:`topspark_ros.nodes.bond`): made when an activation succeeds, broken when the node
deactivates, cleans up, shuts down, processes an error or is destroyed.
"""

from typing import Optional

from lifecycle_msgs.msg import State
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
import rclpy.lifecycle
from rclpy.lifecycle import TransitionCallbackReturn

from . import bond

LEAVING_ACTIVE = (State.TRANSITION_STATE_DEACTIVATING, State.TRANSITION_STATE_CLEANINGUP,
                  State.TRANSITION_STATE_SHUTTINGDOWN, State.TRANSITION_STATE_ERRORPROCESSING)
"""The transitions' states that break the bond (as nav2's servers destroy theirs)."""


class _HeldStateMachine:
    """
    rclpy's lifecycle state machine, held (``with``) through every use made of it.

    rclpy uses its state machine without holding it. Its state read after ``destroy`` is freed
    memory: the process crashed (segmentation fault, a review) where a callback still running
    when :meth:`LifecycleNode.destroy_node` came (``~/get_state``, ``/diagnostics``, a long
    transition the runner stopped waiting for) read it. Held, destruction waits for the use
    in progress, and a later use raises ``InvalidHandle``.
    """

    def __init__(self, machine) -> None:
        """Hold ``machine`` through each use."""
        self._machine = machine

    def destroy_when_not_in_use(self) -> None:
        """Destroy the machine once no use holds it (again: nothing)."""
        self._machine.destroy_when_not_in_use()

    def __getattr__(self, name: str):
        with self._machine:  # (a property such as current_state is read here)
            value = getattr(self._machine, name)
        if not callable(value):
            return value

        def held(*args, **kwargs):
            with self._machine:
                return value(*args, **kwargs)
        return held


class LifecycleNode(rclpy.lifecycle.LifecycleNode):
    """
    rclpy's ``LifecycleNode`` whose ``~/change_state`` refuses what the state does not allow.

    Active, it keeps a bond with nav2's lifecycle manager (module doc; :attr:`bond_state`).
    """

    def __init__(self, node_name: str, **kwargs) -> None:
        """Create the node; route ``~/change_state`` through :meth:`_on_change_state`."""
        super().__init__(node_name, **kwargs)
        self._state_machine = _HeldStateMachine(self._state_machine)
        service = getattr(self, '_service_change_state', None)  # none without the interface
        self._rclpy_change_state = None
        if service is not None:
            self._rclpy_change_state = service.callback
            service.callback = self._on_change_state
        self._bond = None
        self._bond_status = bond.status_type()
        callbacks = self._callbacks  # rclpy's transition callbacks by state id
        activating = callbacks[State.TRANSITION_STATE_ACTIVATING]

        def activate(previous):
            result = activating(previous)
            if result == TransitionCallbackReturn.SUCCESS:
                self._make_bond()
            return result
        callbacks[State.TRANSITION_STATE_ACTIVATING] = activate
        for state_id in LEAVING_ACTIVE:
            callbacks[state_id] = self._breaking_bond(callbacks[state_id])

    @property
    def bond_state(self) -> str:
        """Return the state of the bond with nav2's lifecycle manager (or 'off')."""
        current = self._bond  # (read once: an activation may replace it meanwhile)
        return current.state if current is not None else 'off'

    def _make_bond(self) -> None:
        """Start a bond (a previous one closed) unless the period is 0 or bond is missing."""
        self._close_bond()
        period = (self.get_parameter(bond.PARAM.name).value
                  if self.has_parameter(bond.PARAM.name) else bond.PARAM.default)
        if period <= 0.0:
            return
        if self._bond_status is None:
            self.get_logger().debug('no bond with a lifecycle manager: the bond messages '
                                    '(ros-<distro>-bond) are not installed')
            return
        self._bond = bond.Bond(self, period, self._bond_status, on_event=self._bond_event)

    def _bond_event(self, name: str) -> None:
        logger = self.get_logger()
        if name == 'formed':
            logger.info('bond formed with the lifecycle manager')
        elif name == 'sister_broke':
            logger.info('the lifecycle manager broke the bond')
        else:
            logger.debug(f'no lifecycle manager joined the bond in {bond.CONNECT_TIMEOUT_S:g} '
                         's: bond given up')

    def _breaking_bond(self, callback):
        """Return ``callback`` followed by breaking the bond (also when it raises)."""
        def leave(previous):
            try:
                return callback(previous)
            finally:
                if self._bond is not None:
                    self._bond.break_()
        return leave

    def _close_bond(self) -> None:
        if self._bond is not None:
            self._bond.close()
            self._bond = None

    def destroy_node(self) -> None:
        """
        Break and close the bond (the manager knows at once), then destroy the node.

        Its lifecycle services go too: rclpy's ``destroy_node`` leaves the state machine, whose
        services hold the node, so a node destroyed in a process that goes on stayed in the
        graph (``~/get_state`` still answered) and kept the process's DDS participant until it
        was garbage-collected. A participant destroyed later, while another one of the process
        announced its endpoints, hung that process in Fast DDS 2.14 (a test run that never
        ended, spinning in ``DomainParticipant::set_listener``). A transition or lifecycle
        service still running then (one the runner stopped waiting for) gets ``InvalidHandle``
        at its next use of the state machine (:class:`_HeldStateMachine`), not a crash.
        """
        try:
            self._close_bond()
        finally:
            try:
                super().destroy_node()
            finally:
                state_machine = getattr(self, '_state_machine', None)
                if state_machine is not None:
                    state_machine.destroy_when_not_in_use()

    def _on_change_state(self, request, response):
        """Answer a ChangeState request: refused (``success=false``) unless the state offers it."""
        reason = self.transition_refusal(request.transition.id, request.transition.label)
        if reason is None:
            try:
                return self._rclpy_change_state(request, response)
            except _rclpy.RCLError as exc:  # the state changed meanwhile (an in-process trigger)
                reason = str(exc)
        self.get_logger().warn(f'transition refused: {reason}')
        response.success = False
        return response

    def transition_refusal(self, transition_id: int, label: str = '') -> Optional[str]:
        """
        Return why the current state does not allow a transition, or None if it does.

        As rclpy does, a non-empty ``label`` names the transition and ``transition_id`` is then
        ignored.
        """
        offered = [(t[0], t[1]) for t in self._state_machine.available_transitions]
        if (label and label in (name for _, name in offered)) or \
                (not label and transition_id in (number for number, _ in offered)):
            return None
        asked = f'{label!r}' if label else f'id {transition_id}'
        allowed = ', '.join(f'{name} ({number})' for number, name in offered) or 'none'
        state = self._state_machine.current_state[1]
        return f'{asked} is not a transition of state {state!r} (allowed: {allowed})'
