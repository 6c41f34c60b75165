"""The SLAM node with the simulated predictor standing in for the network, for the node tests:

    python test/nodes/simulated_slam_node.py --ros-args --params-file <file>

Same node, same main() (da3_ros/nodes/slam_node.py); the only difference is SlamNode(simulated=
True), which also declares ros/slam/params.py SIMULATION_PARAMS (test.simulated_*). The production
`slam_node` has no such parameters and refuses them as unknown keys.
"""
import sys

from da3_ros.nodes.slam_node import SlamNode
from da3_ros.ros.node_main import run_node

if __name__ == '__main__':
    sys.exit(run_node(lambda: SlamNode(simulated=True), 'da3_slam'))
