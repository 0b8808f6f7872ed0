"""
Per-node fidelity of an export or import: faithful, approximate or not representable.

Exporters and importers build a :class:`FidelityReport` as they map a model node by node;
the report is printed by the command and stored in the exported file, so what a graph leaves
out or changes is never silent.
"""

from dataclasses import dataclass, field
from typing import List

FAITHFUL = 'faithful'
APPROXIMATE = 'approximate'
NOT_REPRESENTABLE = 'not representable'
STATUSES = (FAITHFUL, APPROXIMATE, NOT_REPRESENTABLE)


@dataclass(frozen=True)
class NodeFidelity:
    """
    How one node (or one property of the model) maps.

    Attributes
    ----------
    node
        the graph node's name (or ``'<model>'`` for a property that belongs to no node).
    kind
        what it is (``'IF'``, ``'Conv2d'``, ``'Poisson encoding'``, ...).
    status
        one of :data:`STATUSES`.
    reason
        why, in one sentence (empty only for a plain faithful mapping).

    """

    node: str
    kind: str
    status: str
    reason: str = ''

    def __post_init__(self) -> None:
        """Check the status; ``ValueError`` on an unknown one."""
        if self.status not in STATUSES:
            raise ValueError(f'status must be one of {STATUSES}, got {self.status!r}')

    def to_dict(self) -> dict:
        """Return the entry as a plain dict."""
        return {'node': self.node, 'kind': self.kind, 'status': self.status,
                'reason': self.reason}


@dataclass
class FidelityReport:
    """The entries of one export or import, in graph order."""

    entries: List[NodeFidelity] = field(default_factory=list)

    def add(self, node: str, kind: str, status: str, reason: str = '') -> None:
        """Append an entry."""
        self.entries.append(NodeFidelity(node, kind, status, reason))

    def counts(self) -> dict:
        """Return ``{status: number of entries}`` for every status."""
        return {s: sum(e.status == s for e in self.entries) for s in STATUSES}

    def to_list(self) -> list:
        """Return the entries as plain dicts."""
        return [e.to_dict() for e in self.entries]

    @classmethod
    def from_list(cls, entries: list) -> 'FidelityReport':
        """Rebuild from :meth:`to_list` output."""
        return cls([NodeFidelity(**dict(e)) for e in entries])

    def lines(self) -> list:
        """Return one human-readable line per entry (``status  node (kind): reason``)."""
        width = max((len(e.node) for e in self.entries), default=0)
        return [f'{e.status:>17}  {e.node:<{width}} ({e.kind})'
                + (f': {e.reason}' if e.reason else '') for e in self.entries]
