"""ROS 2 nodes: thin rclpy glue over :mod:`topspark_ros.core` (the only layer importing rclpy)."""
