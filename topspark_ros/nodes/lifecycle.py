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
"""

from typing import Optional

from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
import rclpy.lifecycle


class LifecycleNode(rclpy.lifecycle.LifecycleNode):
    """rclpy's ``LifecycleNode`` whose ``~/change_state`` refuses what the state does not allow."""

    def __init__(self, node_name: str, **kwargs) -> None:
        """Create the node; route ``~/change_state`` through :meth:`_on_change_state`."""
        super().__init__(node_name, **kwargs)
        service = getattr(self, '_service_change_state', None)  # none without the interface
        self._rclpy_change_state = None
        if service is not None:
            self._rclpy_change_state = service.callback
            service.callback = self._on_change_state

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
