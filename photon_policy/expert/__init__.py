"""Privileged expert driver that reads the track, free of ROS."""
