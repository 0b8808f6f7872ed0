"""
The TopSpark method on any model family.

Timestep sweeps and profiles, parameter enhancement, the trade-off strategy, early exit,
energy metering and scoring of runs.

Nothing here is imported by this ``__init__``, so a family may use :mod:`.early_exit` without
pulling in the search machinery.
"""
