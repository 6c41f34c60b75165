"""Chunked streaming SLAM on top of any Predictor (pure Python, no rclpy).

Frames are grouped into overlapping chunks, each chunk goes through the network once,
consecutive chunks are tied by a robust Sim(3) of their shared frames, verified loops add
Sim(3) edges, and a GTSAM pose graph re-anchors frames and the voxel map.
"""
