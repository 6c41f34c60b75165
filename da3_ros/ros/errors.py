"""Why a message was dropped: one exception class per concern, each with a short `cause` key.

`cause` is a stable snake_case string meant as a diagnostics counter key (``drops[err.cause]``);
the message text names the offending values for the log.

Why in the ROS shell though it imports nothing of ROS: these are the reasons a node drops a
message (counted per cause in /diagnostics); the core raises the plain errors of
da3_ros/errors.py, which these extend.
"""

from da3_ros.errors import InputError


class MessageError(InputError):
    """A ROS message cannot be used; `cause` says why in one counter-friendly word; `source`
    names the camera it concerns when known (None: the rig / the caller knows)."""

    def __init__(self, cause: str, detail: str, source: str | None = None):
        super().__init__(f'{cause}: {detail}')
        self.cause = cause
        self.source = source


class ImageError(MessageError):
    """An Image/CompressedImage is malformed (encoding, step, size, codec)."""


class CameraInfoError(MessageError):
    """A CameraInfo holds no usable pinhole model (NaN, non-positive focal, bad size)."""


class CloudError(MessageError):
    """Inputs to a point cloud disagree in shape, or a PointCloud2 cannot be decoded."""


class SyncError(MessageError):
    """The synchroniser rejected an incoming message (duplicate or out-of-order stamp)."""


class TfError(MessageError):
    """A transform is malformed, or a lookup cannot be answered from the buffer."""
