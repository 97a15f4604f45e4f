"""Reports over traces and results: readable summaries now; tables, plots and gates later."""

from .html import write_report
from .summary import summarize_trace

__all__ = ["summarize_trace", "write_report"]
