"""
The converted model family: deep SNNs converted from CNNs (clipped ReLU, integrate-and-fire).

Modules, one concern each:

* :mod:`~topspark_ros.core.converted.config` -- structure (:class:`ConvertedConfig`) and
  run-time parameters (:class:`ConvertedParams`), as saved in checkpoints.
* :mod:`~topspark_ros.core.converted.net` -- the trainable CNN (:class:`ConvertibleNet`,
  :func:`clip_activation`) and its wiring per architecture.
* :mod:`~topspark_ros.core.converted.network` -- the spiking network
  (:class:`ConvertedNetwork`): the pure integrate-and-fire step (:func:`if_step`), inference
  with T per call, results and checkpoints.
* :mod:`~topspark_ros.core.converted.knobs` -- the enhancement knobs (``ConvertedNetwork.knobs``).
* :mod:`~topspark_ros.core.converted.train` -- data preparation, ANN training, SNN
  fine-tuning, evaluation and the whole training run of ``topspark train --family converted``.

The public names of config, net and network are re-exported here.
"""

from topspark_ros.core.converted.config import (  # noqa: F401
    ConvertedConfig, ConvertedParams, INPUT,
)
from topspark_ros.core.converted.net import clip_activation, ConvertibleNet  # noqa: F401
from topspark_ros.core.converted.network import (  # noqa: F401
    ConvertedCounts, ConvertedNetwork, if_step, IFParameters, IFState,
)
