"""What is concluded: gate verdicts and JSON/JUnit/Markdown/HTML reports, read from saved results only."""

from reports.build import Report, write_reports
from reports.compare import CompareRow, compare
from reports.gate import LiveGate, ThresholdResult, evaluate
from reports.results import RunData, load_results

__all__ = ["Report", "write_reports", "CompareRow", "compare", "LiveGate", "ThresholdResult", "evaluate", "RunData", "load_results"]
