"""The SLAM node's private helpers: its parameter table and typed configuration, the frame
inputs (synchronised images, RigDepth, the simulated test route), the session that feeds a
SlamSystem and reads it out in the node's ROS frames (map, odom, base), the atomic map-folder
store, its publishers and the messages built from the SLAM's state.

nodes/slam_node.py only wires these together; message plumbing both nodes share (QoS, image
and CameraInfo conversion, the synchroniser, TF, clouds, diagnostics, the parameter
declaration) stays in da3_ros/ros/.
"""
