"""
Plain-dict round trips of the frozen dataclasses that checkpoints and profiles store.

Every configuration and parameter type (STDP, converted, event encoding) is written with
``dataclasses.asdict`` and read back with :func:`from_dict`, which refuses keys the type does
not have: a checkpoint from a newer or another family's code fails with the names, never by
silently dropping a setting.
"""

from dataclasses import fields
from typing import Callable, Mapping, Optional, Type, TypeVar

T = TypeVar('T')


def from_dict(cls: Type[T], values: Mapping, *, error: type = ValueError,
              convert: Optional[Callable] = None) -> T:
    """
    Build dataclass ``cls`` from ``values``; unknown keys raise ``error`` naming them.

    ``convert``, when given, is applied to every value first (e.g. ``float``).
    """
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise error(f'unknown {cls.__name__} fields: {unknown}')
    if convert is not None:
        values = {key: convert(value) for key, value in values.items()}
    return cls(**values)
