"""da3_ros: Depth Anything 3 for ROS 2.

The generated message modules (``da3_ros.msg``) are installed by the ament build into
site-packages, while a source checkout holds only the hand-written modules. Extending the
package path lets both halves be imported as one package.
"""
__path__ = __import__('pkgutil').extend_path(__path__, __name__)

__version__ = '0.1.0'
