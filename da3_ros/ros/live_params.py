"""`ros2 param set` on a running node: live parameters are checked, then applied.

Every parameter of a node's table (params.Param) is either live or read at start-up.
Start-up parameters are declared read-only, so rclpy itself refuses a set of one with
"Trying to set a read-only parameter" before anything here runs. For the live ones:

- the on-set callback builds the configuration the new values would give, with the same
  checks as at start-up (type, range, choices, cross-checks such as check_sync); a ConfigError
  refuses the whole set, with its message ("parameter 'sync.slop_s': ...") as the reason;
- the post-set callback (after rclpy stored the values) builds it again and hands it to
  `apply`, the node's function that gives it to the parts that read it (synchroniser, output
  options, publishers, log throttle).

Names outside the table (rclpy's own use_sim_time) are left to rclpy.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rcl_interfaces.msg import SetParametersResult

from da3_ros.errors import ConfigError


class LiveParameters:
    """node: the rclpy node, its parameters declared; params: its Param table;
    update(values) -> the new configuration for the raw values (name -> value) of every live
    parameter (raises ConfigError); apply(cfg): make the running node use it."""

    def __init__(self, node, params, update: Callable[[dict[str, Any]], Any],
                 apply: Callable[[Any], None]):
        self.node, self.update, self.apply = node, update, apply
        self.names = tuple(p.name for p in params if p.live)
        node.add_on_set_parameters_callback(self._check)
        node.add_post_set_parameters_callback(self._apply)

    def _values(self, changes) -> dict[str, Any] | None:
        """Current values of the live parameters with `changes` (rclpy Parameters) applied;
        None when no live parameter changes."""
        if not any(p.name in self.names for p in changes):
            return None
        values = {name: self.node.get_parameter(name).value for name in self.names}
        values.update({p.name: p.value for p in changes if p.name in self.names})
        return values

    def _check(self, changes) -> SetParametersResult:
        try:
            if (values := self._values(changes)) is not None:
                self.update(values)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def _apply(self, changes) -> None:
        if (values := self._values(changes)) is not None:
            cfg = self.update(values)
            self.apply(cfg)
            self.node.get_logger().info(
                'parameters set: ' + ', '.join(f'{p.name}={p.value!r}' for p in changes
                                               if p.name in self.names))
