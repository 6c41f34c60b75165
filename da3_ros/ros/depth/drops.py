"""A dropped message or set: counted by cause in /diagnostics, logged at most once per cause
per log_throttle_s, so a flood of bad messages neither stops the node nor floods the log."""
from __future__ import annotations

from da3_ros.errors import PointsError
from da3_ros.ros.diagnostics import CauseThrottle, DepthDiagnostics
from da3_ros.ros.errors import MessageError


class DropLog:
    """diag: the node's DepthDiagnostics; throttle: its CauseThrottle; logger: rclpy's."""

    def __init__(self, diag: DepthDiagnostics, throttle: CauseThrottle, logger):
        self.diag, self.throttle, self.logger = diag, throttle, logger

    def warn(self, cause: str, text: str) -> None:
        """One throttled warning for a drop that is counted elsewhere (e.g. the synchroniser)."""
        if self.throttle.should_log(cause):
            self.logger.warning(f'dropped ({cause}): {text}; further drops of this cause are '
                                f'counted in /diagnostics')

    def drop(self, cause: str, text: str, source: str = 'rig') -> None:
        """Count one drop for source (a camera name, or 'rig' for a whole set) and warn."""
        self.diag.drop(cause, source)
        self.warn(cause, text)

    def set_failed(self, err: Exception) -> None:
        """A set the worker could not process: its MessageError's or PointsError's cause,
        else 'processing_error' (any other exception: the worker goes on with the next set)."""
        if isinstance(err, MessageError):
            self.drop(err.cause, str(err), err.source or 'rig')
        elif isinstance(err, PointsError):
            self.drop(err.cause, str(err))
        else:
            self.drop('processing_error', f'{type(err).__name__}: {err}')

    def publish_failed(self, err: Exception) -> None:
        self.drop('publish_error', f'{type(err).__name__}: {err}')
