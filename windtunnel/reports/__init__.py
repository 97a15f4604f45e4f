"""Reports over traces and results: readable summaries now; tables, plots and gates later."""

from .summary import summarize_trace

__all__ = ["summarize_trace"]
