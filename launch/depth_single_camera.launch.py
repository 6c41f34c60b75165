"""One camera: ros2 launch da3_ros depth_single_camera.launch.py camera:=/camera model:=...

Logic in da3_ros/launch_logic.py (single_camera_nodes); this file only maps it onto launch_ros.
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from da3_ros.launch_logic import (
    LAUNCH_OVERRIDES,
    argument_description,
    launch_overrides,
    single_camera_nodes,
)
from launch import LaunchDescription


def _nodes(context):
    overrides = launch_overrides(lambda k: LaunchConfiguration(k).perform(context))
    camera = LaunchConfiguration('camera').perform(context)
    return [Node(**d.launch_kwargs()) for d in single_camera_nodes(camera, overrides)]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument('camera', default_value='/camera',
                               description=argument_description('camera'))]
        + [DeclareLaunchArgument(k, default_value='', description=argument_description(k))
           for k in LAUNCH_OVERRIDES]
        + [OpaqueFunction(function=_nodes)])
