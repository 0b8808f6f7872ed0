"""Resolve ``package://<package>/<path>`` parameter values to files (ROS resource URLs)."""

import os

PREFIX = 'package://'
SHIPPED_MODEL = 'package://topspark_ros/models/stdp_fmnist_n400.json'
"""The model the nodes run by default (config/topspark.yaml lists the same)."""
SHIPPED_PROFILE = 'package://topspark_ros/models/stdp_fmnist_n400.profile.yaml'
"""Its timestep profile, the nodes' default ``profile_path``."""


def resolve(path: str) -> str:
    """
    Return the file a parameter names.

    ``package://topspark_ros/models/x.json`` becomes ``<share of topspark_ros>/models/x.json``
    (found through the ament index); anything else is returned with ``~`` expanded.
    """
    if not path.startswith(PREFIX):
        return os.path.expanduser(path)
    package, _, rest = path[len(PREFIX):].partition('/')
    if not package or not rest:
        raise ValueError(f'{path!r}: expected package://<package>/<path>')
    from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    try:
        share = get_package_share_directory(package)
    except PackageNotFoundError:
        raise ValueError(f'{path!r}: package {package!r} is not installed (or not '
                         'sourced)') from None
    return os.path.join(share, rest)
