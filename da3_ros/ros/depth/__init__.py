"""The depth node's private helpers: its parameter table, per-camera input checks, frame
selection and TF readiness, the newest-set worker, its publishers, and the messages built from
one Prediction (host and device paths, Nav2 outputs, the calibration rig on /tf_static).

nodes/depth_node.py only wires these together; message plumbing both nodes share (QoS, image
and CameraInfo conversion, the synchroniser, TF, clouds, diagnostics) stays in da3_ros/ros/.
"""
