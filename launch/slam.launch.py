"""Depth node + SLAM node: ros2 launch da3_ros slam.launch.py params_file:=my_slam.yaml

The YAML holds da3_depth and da3_slam ros__parameters sections. Logic in
da3_ros/launch_logic.py (slam_nodes); this file only maps it onto launch_ros.
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from da3_ros.launch_logic import (
    LAUNCH_OVERRIDES,
    argument_description,
    launch_overrides,
    slam_nodes,
)
from launch import LaunchDescription


def _nodes(context):
    overrides = launch_overrides(lambda k: LaunchConfiguration(k).perform(context))
    descriptions = slam_nodes(LaunchConfiguration('params_file').perform(context), overrides,
                              LaunchConfiguration('namespace').perform(context))
    return [Node(**d.launch_kwargs()) for d in descriptions]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument('params_file', description=argument_description('params_file')),
         DeclareLaunchArgument('namespace', default_value='',
                               description=argument_description('namespace'))]
        + [DeclareLaunchArgument(k, default_value='', description=argument_description(k))
           for k in LAUNCH_OVERRIDES]
        + [OpaqueFunction(function=_nodes)])
