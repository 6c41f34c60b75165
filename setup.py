"""pip metadata for da3_ros: the non-ROS core installs with `pip install .`.

The ROS 2 build (messages in msg/) goes through CMakeLists.txt; see README.md.
"""

from setuptools import find_packages, setup

PACKAGE = 'da3_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    description='Depth Anything 3 for ROS 2: multi-camera depth, poses, clouds and SLAM',
    license='Apache-2.0',
    packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']),
    python_requires='>=3.10',
    install_requires=['numpy', 'torch', 'safetensors', 'huggingface_hub',
                      'opencv-python-headless', 'tqdm', 'pyyaml', 'transforms3d', 'plyfile'],
    extras_require={
        # depth-anything-3==0.1.1 and evo are test references too, but they must be installed
        # with --no-deps (their pins clash with this environment), so scripts/setup.sh installs
        # them separately.
        'test': ['pytest', 'einops', 'addict', 'omegaconf', 'scipy', 'rosbags'],
        'onnx': ['onnx', 'onnxruntime'],
        'slam': ['gtsam'],
        'offline': ['rosbags'],
    },
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
    ],
    entry_points={'console_scripts': [f'da3-ros = {PACKAGE}.cli:main',
                                      f'depth_node = {PACKAGE}.nodes.depth_node:main',
                                      f'slam_node = {PACKAGE}.nodes.slam_node:main']},
    zip_safe=False,
)
