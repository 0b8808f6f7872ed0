"""
Core of topspark_ros: everything the papers are about, free of ROS (torch and numpy only).

Modules:

* :mod:`~topspark_ros.core.model` -- the one interface of the model families (``infer`` with
  an explicit ``T``, one result type, ``check_timesteps``); :mod:`~topspark_ros.core.inputs`
  -- its typed inputs (frames, ``SpikeEvents``, ``EventFrames``).
* :mod:`~topspark_ros.core.data.idx` -- MNIST-family IDX readers, data set search, splits.
* :mod:`~topspark_ros.core.stdp.encoding` -- Poisson rate coding of images into spike trains.
* :mod:`~topspark_ros.core.stdp` -- the Diehl & Cook (2015) STDP network (config, dynamics
  parameters, model, results); :mod:`~topspark_ros.core.stdp.kernels` is its numba CPU engine and
  :mod:`~topspark_ros.core.stdp.torch_engine` its dense torch (reference, GPU) engine.
* :mod:`~topspark_ros.core.stdp.readout` -- label assignment and class votes.
* :mod:`~topspark_ros.core.checkpoint` -- safetensors + JSON checkpoints, saved atomically.
* :mod:`~topspark_ros.core.converted` -- deep SNNs converted from CNNs with trainable clipping
  thresholds (IF neurons, soft reset, direct input, 1 to 8 timesteps);
  :mod:`~topspark_ros.core.converted.train` trains them (ANN, then optional SNN fine-tuning).
* :mod:`~topspark_ros.core.data.cifar` -- CIFAR-10/100 readers (python pickle batches).
"""
