"""
How many threads torch uses for one operation (intra-op threads), chosen deliberately.

torch's default is one thread per core. On a 2-core machine shared with other work that
oversubscribes the cores: measured with ``benchmarks/bench_torch_threads.py`` while one other
process kept a core busy, two threads made converted-ANN training 2.7x slower and batch-1 SNN
inference 4.8x slower than one thread; on an idle machine two threads were 1.6x faster
(docs/benchmarks.md). A robot's computer runs other nodes beside the classifier, so one thread
is the default everywhere torch runs (``topspark --threads``, the classifier's
``torch_threads`` parameter); raise it on a machine with idle cores.
"""

DEFAULT_TORCH_THREADS = 1
"""Intra-op threads of torch unless told otherwise (see the module docstring)."""


def set_torch_threads(threads: int = DEFAULT_TORCH_THREADS) -> int:
    """
    Make torch use ``threads`` intra-op threads in this process; return the previous count.

    Raises ValueError for a count below 1. torch is imported here, not at module import.
    """
    if int(threads) != threads or threads < 1:
        raise ValueError(f'torch threads must be an integer >= 1, got {threads!r}')
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    return previous
