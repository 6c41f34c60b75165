"""config/nav2_costmap_da3.yaml against Nav2's documented costmap parameter names (Nav2 is not
installable here: docs.nav2.org, configuration guide, costmap plugins obstacle / voxel /
inflation / static layer, observation sources) and against the depth node's Nav2 outputs."""
from __future__ import annotations

from pathlib import Path

import yaml

from da3_ros.ros.depth.params import parse_depth_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / 'config' / 'nav2_costmap_da3.yaml').read_text())

COSTMAP = {'update_frequency', 'publish_frequency', 'global_frame', 'robot_base_frame',
           'rolling_window', 'width', 'height', 'resolution', 'plugins', 'track_unknown_space'}
OBSTACLE_LAYER = {'plugin', 'enabled', 'footprint_clearing_enabled', 'min_obstacle_height',
                  'max_obstacle_height', 'combination_method', 'observation_sources'}
VOXEL_LAYER = OBSTACLE_LAYER | {'publish_voxel_map', 'origin_z', 'z_resolution', 'z_voxels',
                                'unknown_threshold', 'mark_threshold'}
SOURCE = {'topic', 'sensor_frame', 'observation_persistence', 'expected_update_rate',
          'data_type', 'min_obstacle_height', 'max_obstacle_height', 'inf_is_valid',
          'marking', 'clearing', 'obstacle_max_range', 'obstacle_min_range',
          'raytrace_max_range', 'raytrace_min_range'}
OTHER_LAYERS = {'nav2_costmap_2d::InflationLayer': {'plugin', 'cost_scaling_factor',
                                                    'inflation_radius', 'enabled'},
                'nav2_costmap_2d::StaticLayer': {'plugin', 'map_subscribe_transient_local',
                                                 'enabled', 'map_topic'}}
TOPICS = {'/da3/obstacles': 'PointCloud2', '/da3/scan': 'LaserScan'}


def layers():
    for name in ('local_costmap', 'global_costmap'):
        params = CONFIG[name][name]['ros__parameters']
        assert set(params) - set(params['plugins']) <= COSTMAP, name
        for plugin in params['plugins']:
            yield name, plugin, params[plugin]


def test_costmaps_use_nav2s_parameter_names():
    kinds = set()
    for costmap, plugin, layer in layers():
        kind = layer['plugin']
        kinds.add(kind)
        if kind in OTHER_LAYERS:
            assert set(layer) <= OTHER_LAYERS[kind], (costmap, plugin)
            continue
        allowed = VOXEL_LAYER if kind == 'nav2_costmap_2d::VoxelLayer' else OBSTACLE_LAYER
        assert kind in ('nav2_costmap_2d::VoxelLayer', 'nav2_costmap_2d::ObstacleLayer')
        sources = layer['observation_sources'].split()
        assert set(layer) - set(sources) <= allowed, (costmap, plugin)
        for source in sources:
            src = layer[source]
            assert set(src) <= SOURCE, (costmap, source, set(src) - SOURCE)
            assert TOPICS[src['topic']] == src['data_type']
            assert src['obstacle_max_range'] <= src['raytrace_max_range']
            assert src['min_obstacle_height'] < src['max_obstacle_height']
            # REP-117: the scan's inf bearings are free space, so Nav2 must clear with them
            assert src['inf_is_valid'] == (src['data_type'] == 'LaserScan')
            assert src['clearing'] or src['marking']
    assert {'nav2_costmap_2d::VoxelLayer', 'nav2_costmap_2d::ObstacleLayer'} <= kinds


def test_sources_match_the_depth_nodes_outputs():
    """Marking stops inside the node's nav.range_max_m; clearing reaches it; the scan lies in
    the base frame's z = 0 plane, inside the scan sources' height band."""
    nav = parse_depth_config({'cameras': ['/cam'], 'metric_mode': 'metric_model',
                              'publish.obstacles': True, 'publish.scan': True}).nav
    for _, _, layer in layers():
        for source in layer.get('observation_sources', '').split():
            src = layer[source]
            assert src['obstacle_max_range'] < nav.range_max_m
            assert src['raytrace_max_range'] <= nav.range_max_m
            if src['data_type'] == 'LaserScan':
                assert src['min_obstacle_height'] < 0.0 < src['max_obstacle_height']
            else:
                assert src['min_obstacle_height'] <= nav.min_height_m
