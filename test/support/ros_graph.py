"""Leave the DDS graph at once: what every in-process node test does on its way out."""


def destroy(node) -> None:
    """Destroy ``node`` and, for a lifecycle node, its state machine's services too."""
    state_machine = getattr(node, '_state_machine', None)
    if state_machine is not None:  # its services (~/get_state, ...): destroy_node keeps them
        state_machine.destroy_when_not_in_use()
    node.destroy_node()


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
