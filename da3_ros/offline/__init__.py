"""Offline processing (`da3-ros process`): a rosbag2, image folder or video -> DA3 outputs.

sources (bag_input, folder_input, video_input) yield RigFrames; process.run_sets runs the
Predictor over each and hands every SetResult to a list of consumers (bag_output, file_output,
slam_stage); staging moves outputs into place only on success.
"""
