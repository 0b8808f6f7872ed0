"""
Declared, described and validated ROS parameters, shared by every node.

Each node lists its parameters as :class:`Param` rows. :func:`declare` declares them with a
``ParameterDescriptor`` (description, range, read-only) and installs one validation callback:
a set with a value of the wrong type, out of range, not among the choices, or that changes a
parameter which needs a restart while the node is active, is refused with the reason, and
nothing of the request is applied (rclpy hands a non-atomic request of several parameters to
the callback one parameter at a time: each is a request of its own). Values given at start-up
(parameter files, ``-p``, launch files) are checked by the same rules of each parameter: one
that a set would be refused does not start the node (ValueError naming it).
"""

import array
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, List, Mapping, Optional, Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class Param:
    """
    One parameter of a node.

    Attributes
    ----------
    name, default, description
        as declared (the default fixes the type; a ``Parameter.Type`` declares a
        parameter of that type without a value, e.g. an optional string array).
    low, high
        inclusive range for numbers, and for each element of a number array (None:
        unbounded).
    above
        exclusive lower bound instead of ``low`` (the value must be greater), e.g. 0.0 for
        a strictly positive float; an integer's declared as the inclusive range from the next
        integer, a float's from the bound itself with the description saying "> bound" (the
        next representable float read ``Min: 5e-324`` in a refusal; a review), the set
        then refused by :meth:`check`.
    length
        required number of elements of an array (None: any).
    choices
        allowed values for strings (empty: any).
    live
        may change at any time; otherwise only while the node is unconfigured (lifecycle
        nodes: configure reads it, so a change while inactive would be accepted and not
        used) or never (plain nodes: read-only).

    """

    name: str
    default: Any
    description: str
    low: Optional[float] = None
    high: Optional[float] = None
    choices: tuple = ()
    live: bool = True
    length: Optional[int] = None
    above: Optional[float] = None

    def _lowest(self) -> Optional[float]:
        """Return the smallest accepted value (``above`` made inclusive), or None."""
        if self.above is None:
            return self.low
        if isinstance(self.default, float):
            return float(self.above)
        return int(self.above) + 1

    def descriptor(self, lifecycle: bool) -> ParameterDescriptor:
        """Return the descriptor: description, range and read-only flag."""
        text = self.description
        if self.above is not None and isinstance(self.default, float):
            text += f' Must be > {self.above:g}.'
        if self.choices:
            text += f' One of: {_choices(self.choices)}.'
        if not self.live:
            text += (' Read at configure: change it while the node is unconfigured.'
                     if lifecycle else ' Read-only: set at start-up.')
        descriptor = ParameterDescriptor(description=text, read_only=not (self.live or lifecycle))
        if isinstance(self.default, (bool, Parameter.Type)):
            return descriptor
        low = self._lowest()
        if isinstance(self.default, int) and (low is not None or self.high is not None):
            descriptor.integer_range = [IntegerRange(
                from_value=int(low if low is not None else -2**63),
                to_value=int(self.high if self.high is not None else 2**63 - 1), step=0)]
        elif isinstance(self.default, float) and (low is not None or self.high is not None):
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(low if low is not None else -1e308),
                to_value=float(self.high if self.high is not None else 1e308), step=0.0)]
        return descriptor

    def argument(self) -> Callable[[str], Any]:
        """
        Return an argparse ``type=`` of this number parameter: parsed, then :meth:`check`-ed.

        A command-line option that sets the parameter then refuses what the parameter would
        (``topspark play --rate 2000`` passed argparse and failed at the node, in rclpy's words;
        a review).
        """
        import argparse

        kind = type(self.default)

        def parse(text: str):
            try:
                value = kind(text)
            except ValueError:
                what = 'an integer' if kind is int else 'a number'
                raise argparse.ArgumentTypeError(f'not {what}: {text!r}') from None
            reason = self.check(value)
            if reason is not None:
                raise argparse.ArgumentTypeError(reason.replace(f'{self.name} ', '', 1))
            return value
        parse.__name__ = kind.__name__  # (argparse names the type in its messages)
        return parse

    def check(self, value: Any) -> Optional[str]:
        """Return why ``value`` is not acceptable, or None."""
        if self.choices and value not in self.choices:
            return f'{self.name} must be one of {_choices(self.choices)}, not {value!r}'
        if isinstance(value, (list, tuple)) or hasattr(value, 'tolist'):
            items = list(value)
            if self.length is not None and len(items) != self.length:
                return f'{self.name} must have {self.length} elements, not {len(items)}'
            for item in items:
                reason = self._check_number(item)
                if reason is not None:
                    return f'{reason} (element of {list(items)})'
            return None
        return self._check_number(value)

    def _check_number(self, value: Any) -> Optional[str]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value != value:
                return f'{self.name} must be a number, not {value}'
            if self.above is not None and not value > self.above:
                return f'{self.name} must be > {self.above}, not {value}'
            if self.low is not None and value < self.low:
                return f'{self.name} must be >= {self.low}, not {value}'
            if self.high is not None and value > self.high:
                return f'{self.name} must be <= {self.high}, not {value}'
        return None


def _choices(choices: tuple) -> str:
    """Return ``choices`` as a parameter's description lists them ('' shown as such)."""
    return ', '.join("''" if choice == '' else str(choice) for choice in choices)


USE_SIM_TIME_AT_START = (
    'use_sim_time is read at start: the node times its periods, windows and rates on the clock '
    'chosen then; restart it with use_sim_time:=true (or false)')
"""Why a set of ``use_sim_time`` after start is refused (a review: the energy monitor took
it, stamped its messages in simulated time and went on with its windows on the steady clock)."""


def declare(node, params: Sequence[Param], *, is_locked: Callable[[], bool] = lambda: False,
            extra_check: Callable[[dict], Optional[str]] = lambda values: None) -> None:
    """
    Declare ``params`` on ``node`` and refuse invalid sets.

    ``is_locked`` says whether parameters that are not ``live`` are locked now (a lifecycle
    node: from configure to cleanup, see :func:`configured`).
    ``extra_check`` receives the would-be values of every parameter after the set (a dict
    name -> value) for rules across parameters, and returns a reason to refuse, or None.
    """
    lifecycle = hasattr(node, 'trigger_configure')
    table = {p.name: p for p in params}
    for p in params:
        node.declare_parameter(p.name, p.default, p.descriptor(lifecycle))

    def validate(changes: list[Parameter]) -> SetParametersResult:
        values = {name: node.get_parameter(name).value for name in table}
        for change in changes:
            spec = table.get(change.name)
            if change.name == 'use_sim_time' and \
                    change.value != node.get_parameter('use_sim_time').value:
                return SetParametersResult(successful=False, reason=USE_SIM_TIME_AT_START)
            if spec is None:
                continue  # rclpy validates its own
            expected = spec.default if isinstance(spec.default, Parameter.Type) \
                else Parameter.Type.from_parameter_value(spec.default)
            if change.type_ != expected:
                return SetParametersResult(
                    successful=False, reason=f'{change.name} must be of type '
                    f'{type(spec.default).__name__}, got {change.type_.name}')
            reason = spec.check(change.value)
            if reason is None and not spec.live and is_locked() \
                    and not _same(change.value, values[change.name]):
                reason = _locked_reason(node, change.name)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
            values[change.name] = change.value
        reason = extra_check(values)
        return SetParametersResult(successful=reason is None, reason=reason or '')

    node.add_on_set_parameters_callback(validate)
    # The values given at start-up (a parameter file, -p, a launch file) were declared before
    # the callback existed: checked now by the same rules (memory_preset:=cmos45_int8 was
    # taken without a word, a choice no set could make; a review).
    # (Rules across parameters, extra_check, are the node's to check when it uses them.)
    for p in params:
        value = node.get_parameter_or(p.name).value  # (None: one declared without a value)
        reason = None if value is None else p.check(value)
        if reason is not None:
            raise ValueError(f'invalid parameter: {reason}')


def _same(value, other) -> bool:
    """
    Return whether two parameter values are equal, an array as its items.

    rclpy stores an integer array as a list and hands a set's new value as ``array('q')``,
    which never equals a list: setting ``roi`` to its own value was refused, and ``ros2 param
    load`` of a dump failed (a review).
    """
    def plain(v):
        return list(v) if isinstance(v, (list, tuple, array.array)) else v
    return plain(value) == plain(other)


def _locked_reason(node, name: str) -> str:
    """Return why ``name``, read at configure, cannot change in ``node``'s state now."""
    machine = getattr(node, '_state_machine', None)
    if machine is not None and machine.current_state[1] == 'finalized':
        return (f'{name} is read at configure and the node is finalized (shut down): start '
                'it again with the new value')
    return (f'{name} is read at configure: change it while the node is unconfigured '
            '(cleanup first, then configure again)')


def given_at_start(node, names: Sequence[str]) -> set:
    """
    Return which of ``names`` were given to ``node`` at start-up.

    By a parameters file, a launch file or ``--ros-args -p``: rclpy's overrides of the node
    (which rclpy keeps as ``_parameter_overrides``, with no public accessor).
    """
    overrides = _start_overrides(node)
    return {name for name in names if name in overrides}


def _start_overrides(node) -> Mapping[str, Any]:
    """Return the values given to ``node`` at start-up, by name (rclpy's overrides)."""
    return getattr(node, '_parameter_overrides', None) or {}


def configured(node) -> bool:
    """Return whether lifecycle ``node`` is past configure (any state but unconfigured)."""
    return node._state_machine.current_state[1] != 'unconfigured'


def values(node, params: Sequence[Param]) -> dict:
    """Return the current values of ``params`` as a dict name -> value."""
    return {p.name: node.get_parameter(p.name).value for p in params}


def live_values(node, params: Sequence[Param]) -> Callable[[], Mapping[str, Any]]:
    """
    Return a function giving the current values of ``params`` without asking the node.

    A read-only view of a dict that a post-set callback replaces whole after every accepted
    set: a reader in another thread sees all of one set or none of it, and an input costs no
    ``get_parameter`` calls (about 8 us each: 0.3 ms a frame for the classifier's table).
    """
    current = MappingProxyType(values(node, params))
    names = {p.name for p in params}

    def update(changed: list) -> None:
        nonlocal current
        mine = {p.name: p.value for p in changed if p.name in names}
        if mine:
            current = MappingProxyType({**current, **mine})

    node.add_post_set_parameters_callback(update)
    return lambda: current


def params_file_misses(node_name: str, argv: Sequence[str]) -> list:
    """
    Return, per ``--params-file`` in ``argv``, why a key meant for this node does not reach it.

    ``node_name``: the node's fully qualified name. A key with no namespace (``classifier:``
    or ``/classifier:``) names the node of that name in the root namespace only (rcl's rule):
    the README's files were written so, and with the pipeline in a namespace
    (``namespace:=camA``) they were not applied, without a word, the shipped model running
    in place of the user's (a user review). Files that cannot be read are left to rcl, which
    reports them.
    """
    name = node_name.rsplit('/', 1)[-1]
    if node_name == '/' + name:  # in the root namespace: such keys are its own
        return []
    misses = []
    for path, content in _params_files(argv):
        for key in content:
            if str(key).lstrip('/') == name:
                misses.append(
                    f"{path}: its key '{key}' names the node /{name} of the root "
                    f'namespace, so its parameters do not reach this node ({node_name}): write '
                    f"'/**/{name}:' (this node in any namespace) or '{node_name}:'")
    return misses


def _params_files(argv: Sequence[str]):
    """
    Yield ``(path, content)`` of each ``--params-file`` in ``argv``, in order (YAML mappings).

    Files that cannot be read, or hold no mapping, are left out: rcl reports them.
    """
    import yaml

    for flag, path in zip(argv, list(argv)[1:]):
        if flag != '--params-file':
            continue
        try:
            with open(path, encoding='utf-8') as handle:
                content = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(content, dict):
            yield path, content


def layered_value_misses(node, argv: Sequence[str]) -> List[str]:
    """
    Return, per parameter, why the value the last ``--params-file`` in ``argv`` gives missed.

    rcl keeps one value of each type for a parameter that two parameter files give with
    different types, and rclpy takes one of them by its type, not the later file's: over the
    shipped ``config/topspark.yaml``, a user's ``default_timesteps: 50.0`` ran at the shipped
    100, ``early_exit: "true"`` stayed false and ``roi: [10.0, ...]`` was [0, 0, 0, 0], all
    without a word (given alone, each was refused; a review). A value compares by what it
    reads as (``1e-6`` a number); parameters also given by ``-p`` are left out (it wins),
    and files that cannot be read are left to rcl.
    """
    fqn = node.get_fully_qualified_name()
    set_by_p = {arg.partition(':=')[0].rsplit(':', 1)[-1]
                for flag, arg in zip(argv, list(argv)[1:])
                if flag in ('-p', '--param') and ':=' in arg}
    keys = {}  # key naming the node -> {name: (file, value)}, in the order rcl takes them
    for path, content in _params_files(argv):
        for key, section in content.items():
            if isinstance(section, dict) and _names_node(str(key), fqn):
                # rcl merges a key's values over the files, and applies the keys in the order
                # the files first name them (a later key wins): a user's '/**:' key after the
                # shipped '/**/classifier:' wins over the user's own '/**/classifier:' (a
                # review: taken for a miss)
                given = keys.setdefault('/' + str(key).lstrip('/'), {})
                for name, value in _flat(section.get('ros__parameters')).items():
                    given[name] = (path, value)
    last = {name: given for values in keys.values() for name, given in values.items()}
    overrides = _start_overrides(node)
    misses = []
    for name, (path, given) in sorted(last.items()):
        received = overrides.get(name)
        if name in set_by_p or received is None or _reads_as(given, received.value):
            continue
        kind = _kind(received.value)
        why = (f'an earlier parameter file gives it as {kind}, and ROS then keeps that '
               f'value; write it as {kind}, as config/topspark.yaml does')
        misses.append(f"parameter '{name}': {path} gives {given!r}, but {fqn} received "
                      f'{received.value!r}: {why}')
    return misses


def _names_node(key: str, fqn: str) -> bool:
    """Return whether a parameter file's ``key`` names the node ``fqn`` (rcl's wildcards)."""
    import re

    tokens = (key if key.startswith('/') else '/' + key).split('/')[1:]
    pattern = ''.join('(/[^/]+)*' if t == '**' else '/[^/]+' if t == '*' else '/' + re.escape(t)
                      for t in tokens)
    return re.fullmatch(pattern, fqn) is not None


def _flat(section, prefix: str = '') -> dict:
    """Return the values of a ``ros__parameters`` section by their dotted names."""
    out = {}
    for key, value in (section.items() if isinstance(section, dict) else ()):
        if isinstance(value, dict):
            out.update(_flat(value, f'{prefix}{key}.'))
        else:
            out[f'{prefix}{key}'] = value
    return out


def _reads_as(given, received) -> bool:
    """Return whether a file's ``given`` value (as YAML reads it) is the ``received`` one."""
    if isinstance(received, (list, tuple, array.array)) or isinstance(given, (list, tuple)):
        return isinstance(given, (list, tuple)) and \
            isinstance(received, (list, tuple, array.array)) and \
            len(given) == len(received) and all(map(_reads_as, given, list(received)))
    if isinstance(received, bool) and isinstance(given, str):  # rcl's words (YAML's are
        return _RCL_BOOLS.get(given) is received  # fewer: y, n; a review)
    if isinstance(given, bool) or isinstance(received, bool):
        return isinstance(given, bool) and isinstance(received, bool) and given == received
    if isinstance(received, (int, float)):
        try:
            given, received = float(given), float(received)
        except (TypeError, ValueError):
            return False
        return given == received or (given != given and received != received)  # (NaN)
    return str(given) == str(received)


_RCL_BOOLS = {word: value for value, words in (
    (True, ('true', 'True', 'TRUE', 'yes', 'Yes', 'YES', 'y', 'Y', 'on', 'On', 'ON')),
    (False, ('false', 'False', 'FALSE', 'no', 'No', 'NO', 'n', 'N', 'off', 'Off', 'OFF')))
    for word in words}
"""The words rcl's YAML parser reads as bools (unquoted)."""


def _kind(value) -> str:
    """Return the ROS type of a parameter value, in words (``an integer``, ...)."""
    if isinstance(value, (list, tuple, array.array)):
        items = list(value)
        item = _kind(items[0]).split(' ', 1)[1] if items else 'value'
        return f'an array of {item}s'
    return {bool: 'a bool', int: 'an integer', float: 'a double'}.get(type(value),
                                                                      'a string')


def undeclared_overrides(node) -> List[str]:
    """
    Return a warning per value given to ``node`` for a parameter it does not declare.

    Values from parameter files, ``-p`` and launch files reach a node as overrides; rclpy
    keeps those of names the node never declares and says nothing, so a typo
    (``model_pth:``) ran the shipped model in place of the user's, without a word (a user
    review). Each warning names the closest declared parameter where one is close. rclpy's
    own QoS overrides (``qos_overrides.``) are left to it.
    """
    import difflib

    given = _start_overrides(node)
    declared = node.list_parameters([], 0).names
    warnings = []
    for name in sorted(given):
        if name.startswith('qos_overrides.') or node.has_parameter(name):
            continue
        close = difflib.get_close_matches(name, declared, n=1)
        hint = f": did you mean '{close[0]}'?" if close else \
            f' (`ros2 param list {node.get_fully_qualified_name()}` lists them)'
        warnings.append(f"parameter '{name}' was given, but {node.get_fully_qualified_name()} "
                        f'has no such parameter and ignores it{hint}')
    return warnings
