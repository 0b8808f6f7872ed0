"""
A node whose constructor fails leaves the DDS graph at once.

rclpy creates the node (and, with its first node, the context's DDS participant) before the
subclass's constructor declares and checks its parameters. A constructor that then raises (a
value refused, a file not there) left a node that nobody could destroy: it stayed in the graph
and kept the participant alive until the garbage collector found it, at any later moment, in
a process that goes on (a test run, an application that makes its nodes itself). One such
collection, while another participant of the process announced its endpoints, hung a test
run for good in Fast DDS's ``DomainParticipant::set_listener`` (eProsima/Fast-DDS#6513).
Cheap to import: nothing but the standard library.
"""

import functools


def destroyed_if_construction_fails(cls):
    """
    Class decorator: destroy the node when ``cls.__init__`` raises, then raise on.

    What the constructor made is destroyed with it (its publishers, services, timers; a
    lifecycle node's state machine, see :meth:`.lifecycle.LifecycleNode.destroy_node`). A
    ``destroy_node`` of ``cls`` that needs what its constructor had not made yet fails: then
    its base class's is used, and if that fails too (rclpy's own constructor failed part of
    the way), the rcl node alone is destroyed, if it was made. The errors of that clean-up
    are dropped: the constructor's error is the one raised.
    """
    construct = cls.__init__

    @functools.wraps(construct)
    def __init__(self, *args, **kwargs) -> None:
        try:
            construct(self, *args, **kwargs)
        except BaseException:
            for destroy in (self.destroy_node, super(cls, self).destroy_node,
                            lambda: self.handle.destroy_when_not_in_use()):
                try:
                    destroy()
                    break
                except Exception:  # (not made far enough for this one: the next)
                    continue
            raise

    cls.__init__ = __init__
    return cls
