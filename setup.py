"""Installs topspark_ros with pip, without ROS; see setup.cfg for the metadata."""

from setuptools import setup

setup()
