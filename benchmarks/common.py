"""What every benchmark records: the machine it ran on, and its JSON report (written atomically,
so a killed run leaves no half-written result). Imported by the scripts beside it."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from dime_pipeline.textio import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def machine(**extra: object) -> dict[str, object]:
    """Platform, processor, CPU count and Python, plus the benchmark's own facts."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        **extra,
    }


def write_report(path: Path, report: dict[str, object]) -> None:
    """``report`` with a timestamp, as indented JSON at ``path``."""
    report = {**report, "timestamp": datetime.now(UTC).isoformat(timespec="seconds")}
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
