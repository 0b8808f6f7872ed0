"""Leave the DDS graph at once: what every in-process node test does on its way out."""

import gc
import os
import time


def spinner(executor):
    """Return ``spin_until(predicate, timeout_s=30.0)``: spin ``executor`` until it holds."""
    def spin_until(predicate, timeout_s: float = 30.0) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if predicate():
                return True
            executor.spin_once(timeout_sec=0.05)
        return predicate()
    return spin_until


def destroy(node) -> None:
    """
    Destroy ``node`` and, for a lifecycle node, its state machine's services too.

    The package's lifecycle nodes destroy theirs in ``destroy_node``; rclpy's keep them.
    """
    node.destroy_node()
    state_machine = getattr(node, '_state_machine', None)
    if state_machine is not None:  # (a second call does nothing)
        state_machine.destroy_when_not_in_use()


def leave_graph(executor, context) -> None:
    """
    Shut ``executor`` down, destroy its nodes, then shut ``context`` down.

    Each node leaves the DDS graph now, lifecycle services included, not when garbage-collected:
    a later test's ``wait_for_service`` or graph query would otherwise still find it.
    """
    import rclpy

    from topspark_ros.nodes.runner import stop_executor
    nodes = executor.get_nodes()
    stop_executor(executor)  # the callbacks in progress finish before their nodes go
    for node in nodes:
        destroy(node)
    rclpy.shutdown(context=context)
    no_participant_left()


def participants() -> list:
    """
    Return the names of the event threads of this process's Fast DDS participants.

    Fast DDS 2.14 names each participant's event thread ``dds.ev.<participant id>``; a
    participant lives as long as a node of its context (other rmw: always empty).
    """
    names = []
    for task in os.listdir('/proc/self/task'):
        try:
            with open(f'/proc/self/task/{task}/comm') as comm:
                names.append(comm.read().strip())
        except OSError:  # (the thread ended meanwhile)
            continue
    return sorted(name for name in names if name.startswith('dds.ev.'))


def collect_participant_garbage() -> None:
    """Collect the garbage if a DDS participant is still alive (it may be what holds it)."""
    if participants():
        gc.collect()


def no_participant_left() -> None:
    """
    Fail unless every DDS participant of the process is gone (a test's nodes all destroyed).

    A node a test leaves to the garbage collector (a node not on the executor) keeps its
    participant until a collection, at any later moment. Destroyed while
    another test's participant announced its endpoints, it hung a test run in Fast DDS 2.14
    for good: ``DomainParticipant::set_listener`` spun (the busy wait of
    eProsima/Fast-DDS#6513, there said to last tens of seconds) holding the lock the
    announcement waited for (gdb). So what garbage holds goes now, and a participant still
    held fails the test that left it.
    """
    collect_participant_garbage()
    left = participants()
    assert not left, (f'DDS participants still alive after the test ({", ".join(left)}): a '
                      'node of it is still referenced and was not destroyed')
