"""Messages <-> arrays: the only code that knows both ROS message types and numpy/torch."""
