"""The result of a drill: named checks, RPO/RTO, step timings, and the 3-2-1 policy verdict beside them.

Usage::

    report = DrillReport(name="backup-3-2-1")
    report.check("manifest matches", ok, "12 tables equal")
    print(report.summary()); sys.exit(report.exit_code)

Exit code: 0 when every check passed, 1 otherwise. The 3-2-1 policy (``policy``) is
a verdict about where the copies live, not about whether the restore works; it only
counts towards ``passed`` when ``require_policy`` is set (on a single host it can never
be met: one disk, and the "off-site" S3 server runs on loopback). The summary says so
in its first line either way.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Check", "DrillReport"]


@dataclass(frozen=True)
class Check:
    """One verification: its name, whether it passed, and what was seen."""

    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


@dataclass
class DrillReport:
    """Everything a drill found; ``passed`` only when every check passed."""

    name: str
    started: float = field(default_factory=time.time)
    finished: float | None = None
    checks: list[Check] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    rpo: dict[str, Any] | None = None
    rto_seconds: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    site_dir: str = ""
    policy: Check | None = None
    require_policy: bool = False

    @property
    def passed(self) -> bool:
        ok = self.error is None and bool(self.checks) and all(c.passed for c in self.checks)
        return ok and (not self.require_policy or (self.policy is not None and self.policy.passed))

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def check(self, name: str, passed: bool, detail: str) -> Check:
        c = Check(name, bool(passed), detail)
        self.checks.append(c)
        return c

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        d["policy_met"] = None if self.policy is None else self.policy.passed
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def summary(self) -> str:
        head = f"drill {self.name}: {'PASSED' if self.passed else 'FAILED'}"
        if self.policy is not None:
            counted = "required" if self.require_policy else "not counted in the exit code"
            head += f" (restore test); 3-2-1 policy {'met' if self.policy.passed else 'NOT MET here'} ({counted})"
        lines = [head]
        if self.policy is not None:
            lines.append(f"  {'MET ' if self.policy.passed else 'NOT '} {self.policy.name}: {self.policy.detail}")
        lines += ["  " + c.line() for c in self.checks]
        if self.rpo is not None:
            r = self.rpo
            lines.append(
                f"  RPO: {r.get('lost')} of {r.get('acked')} acknowledged commits lost; "
                f"{r.get('rpo_seconds')} s between the last acknowledged and the last restored commit"
            )
        if self.rto_seconds is not None:
            lines.append(f"  RTO: {self.rto_seconds:.1f} s from disaster to storefront serving")
        if self.timings:
            lines.append("  steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        if self.error:
            lines.append(f"  ERROR: {self.error}")
        return "\n".join(lines)
