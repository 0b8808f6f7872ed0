"""The ``topspark`` command: parse arguments, call core, print (``python -m topspark_ros.cli``)."""

from topspark_ros.cli.main import main  # noqa: F401
