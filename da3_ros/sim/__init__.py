"""The SLAM's simulator and evaluation helpers, for tests and benchmarks only (pure Python, no
rclpy); production code (nodes, ros, engine, model, geometry, slam, offline) never imports it.

- routes.py: ground-truth camera trajectories (the synthetic city grid, look-alike, opposite
  and hilly routes) and GroundTruth over TUM / KITTI files (read by slam.trajectory_io)
- predictor.py: SimulatedPredictor, a ChunkPredictor that renders depth, poses and place
  descriptors from a GroundTruth with a network-like error profile; make_simulated builds
  one for the SLAM node's test-only `simulated=True` route
- evaluation.py: trajectory metrics (ATE, RPE) through evo
"""
