"""
Exchange formats: models of either family to and from other tools' graphs (NIR first).

Every exporter and importer reports, node by node, what it maps faithfully, approximately or
not at all (:mod:`topspark_ros.core.exchange.fidelity`); nothing is dropped silently.
"""
