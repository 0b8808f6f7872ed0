"""
Core of topspark_ros: everything the papers are about, free of ROS (torch, numpy, numba).

Laid out by concern (``docs/architecture.md`` has the one-page map):

* :mod:`~topspark_ros.core.model`, :mod:`~topspark_ros.core.inputs` -- the one interface of
  the model families (``infer`` with an explicit ``T`` on a typed input, one result type,
  ``check_timesteps``).
* :mod:`~topspark_ros.core.stdp` -- the Diehl & Cook (2015) STDP family, learning on line.
* :mod:`~topspark_ros.core.converted` -- deep SNNs converted from CNNs.
* :mod:`~topspark_ros.core.topspark` -- the method on any family: sweeps and timestep
  profiles, the one evaluation loop, parameter enhancement, the trade-off strategy, early
  exit, energy metering.
* :mod:`~topspark_ros.core.events` -- event-camera codecs (one per encoding), windows, the
  packet stream, encodings for the models.
* :mod:`~topspark_ros.core.data` -- every data source behind ``--data``.
* :mod:`~topspark_ros.core.exchange` -- NIR export and import.
* :mod:`~topspark_ros.core.session`, :mod:`~topspark_ros.core.pipeline` -- a model classifying
  one input at a time, and everything the classifier node decides.
* :mod:`~topspark_ros.core.checkpoint`, :mod:`~topspark_ros.core.files`,
  :mod:`~topspark_ros.core.fields` -- checkpoints and safe files; :mod:`~topspark_ros.core.energy`
  and :mod:`~topspark_ros.core.power` -- priced and measured energy; :mod:`~.preprocess`,
  :mod:`~.plotting`, :mod:`~.threads`, :mod:`~.frame_gaps`.
"""
