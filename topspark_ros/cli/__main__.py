"""``python -m topspark_ros.cli``: the ``topspark`` command."""

import sys

from topspark_ros.cli.main import main

sys.exit(main())
