"""
The STDP model family: Diehl & Cook's unsupervised network, learning on line.

The public names are re-exported here; the modules are listed in ``docs/architecture.md``.
"""

from topspark_ros.core.stdp.network import (  # noqa: F401
    DiehlCookNetwork, DynamicsParams, InferenceResult, initial_weights, LearnResult,
    simulation_constants, STDPConfig,
)
