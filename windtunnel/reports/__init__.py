"""Reports over traces and results: readable summaries; the metrics table, gates,
Markdown and JUnit of a results directory; a project's ``[tool.windtunnel]`` defaults."""

from .diff import ConfigDiff, ResultsDiff, diff_results
from .gates import Gate, GateResult, evaluate, parse_gate
from .html import write_report
from .junit import junit_xml
from .markdown import append_step_summary, metrics_csv, summary_markdown
from .otel import SIM_EPOCH, otlp_json, to_spans, write_otlp_json
from .project import ErrorPricesTable, ProjectConfig, load_project
from .replay import Replay, replay_command, replayer, scenario_files
from .summary import summarize_trace
from .table import HEADLINE, METRICS, Metric, metric_info, metrics_table

__all__ = [
    "HEADLINE",
    "METRICS",
    "SIM_EPOCH",
    "ConfigDiff",
    "ErrorPricesTable",
    "Gate",
    "GateResult",
    "Metric",
    "ProjectConfig",
    "Replay",
    "ResultsDiff",
    "append_step_summary",
    "diff_results",
    "evaluate",
    "junit_xml",
    "load_project",
    "metric_info",
    "metrics_csv",
    "metrics_table",
    "otlp_json",
    "parse_gate",
    "replay_command",
    "replayer",
    "scenario_files",
    "summarize_trace",
    "summary_markdown",
    "to_spans",
    "write_otlp_json",
    "write_report",
]
