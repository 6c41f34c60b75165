"""The one exception tree of da3_ros: a subclass per concern, messages name the bad values."""


class Da3RosError(Exception):
    """Base of every error da3_ros raises on purpose."""


class ConfigError(Da3RosError, ValueError):
    """A model or node configuration value is invalid."""


class CheckpointError(Da3RosError):
    """A checkpoint cannot be found, read, or does not match the network."""


class InputError(Da3RosError, ValueError):
    """Input tensors or images have the wrong shape, dtype or values."""


class PointsError(InputError):
    """Point arrays, masks or transforms disagree in shape or are not finite; `cause` is one
    counter-friendly word ('shape_mismatch', 'bad_transform') that the nodes count by."""

    def __init__(self, cause: str, detail: str):
        super().__init__(f'{cause}: {detail}')
        self.cause = cause
