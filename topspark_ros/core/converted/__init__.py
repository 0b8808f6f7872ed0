"""
The converted model family: deep SNNs converted from CNNs (clipped ReLU, integrate-and-fire).

The public names are re-exported here; the modules are listed in ``docs/architecture.md``.
"""

from topspark_ros.core.converted.network import (  # noqa: F401
    clip_activation, ConvertedConfig, ConvertedNetwork, ConvertedParams, ConvertedResult,
)
