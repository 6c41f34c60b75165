"""N-camera rig:
    ros2 launch da3_ros depth_rig.launch.py params_file:=package://da3_ros/config/stereo_pair.yaml

Logic in da3_ros/launch_logic.py (rig_nodes); this file only maps it onto launch_ros.
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from da3_ros.launch_logic import (
    LAUNCH_OVERRIDES,
    argument_description,
    config_path,
    launch_overrides,
    rig_nodes,
)
from launch import LaunchDescription


def _nodes(context):
    overrides = launch_overrides(lambda k: LaunchConfiguration(k).perform(context))
    descriptions = rig_nodes(LaunchConfiguration('params_file').perform(context), overrides,
                             LaunchConfiguration('namespace').perform(context))
    return [Node(**d.launch_kwargs()) for d in descriptions]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument('params_file',
                               default_value=str(config_path('depth_nuscenes_6cam.yaml')),
                               description=argument_description('params_file')),
         DeclareLaunchArgument('namespace', default_value='',
                               description=argument_description('namespace'))]
        + [DeclareLaunchArgument(k, default_value='', description=argument_description(k))
           for k in LAUNCH_OVERRIDES]
        + [OpaqueFunction(function=_nodes)])
