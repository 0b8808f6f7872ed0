"""Build ``diagnostic_msgs/DiagnosticArray`` messages for ``/diagnostics``."""

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def diagnostic_array(node, level: bytes, message: str, values: dict) -> DiagnosticArray:
    """Return a one-status array named after ``node`` (``<node>: <fully qualified name>``)."""
    status = DiagnosticStatus(
        level=level, name=f'topspark_ros: {node.get_fully_qualified_name()}', message=message,
        hardware_id=node.get_name(),
        values=[KeyValue(key=str(k), value=_text(v)) for k, v in values.items()])
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    return array


def _text(value) -> str:
    if isinstance(value, float):
        return f'{value:.6g}'
    return str(value)
