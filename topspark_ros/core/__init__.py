"""Core of topspark_ros: everything the papers are about, free of ROS (torch and numpy only)."""
