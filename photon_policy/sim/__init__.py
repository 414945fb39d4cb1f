"""Simulated vehicle (Gymnasium CarRacing-v3) and its drive-by-wire layer, free of ROS."""
