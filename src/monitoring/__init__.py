"""Watching a served model: drift of its inputs and predictions, its live metric from feedback, its traffic.

`monitor.run_monitor` gathers a `MonitorReport`; `report.write_monitor_report` writes it as JSON, PNG and
HTML under build/<name>/; `replay.replay` sends warehouse rows to an endpoint as live traffic.
"""
