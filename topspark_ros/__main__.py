"""``python -m topspark_ros``: the ``topspark`` command line."""

import sys

from topspark_ros.cli import main

sys.exit(main())
