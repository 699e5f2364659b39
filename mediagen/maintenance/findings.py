"""What `doctor` found and did: one `Finding` per problem, grouped by check in a `DoctorReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from mediagen.storage.base import GcReport

MISSING_MAIN = "missing-main"
MISSING_DERIVATION = "missing-derivation"
BROKEN_BLOB = "broken-blob"
REFCOUNT = "refcount"
ORPHAN_BLOB = "orphan-blob"
ORPHAN_FILE = "orphan-file"
STUCK_JOB = "stuck-job"

TITLES = {
    STUCK_JOB: "stuck jobs (lease long expired)",
    MISSING_MAIN: "generations whose main file is missing",
    MISSING_DERIVATION: "derivations whose file is missing",
    BROKEN_BLOB: "blobs whose bytes are missing or short",
    REFCOUNT: "reference counts that are wrong",
    ORPHAN_BLOB: "blobs nothing references",
    ORPHAN_FILE: "blob files without an index row",
}


@dataclass
class Finding:
    check: str
    subject: str
    detail: str
    action: str = ""


@dataclass
class DoctorReport:
    repair: bool
    findings: list[Finding] = field(default_factory=list)
    scanned: dict[str, int] = field(default_factory=dict)
    gc: GcReport | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Nothing found (orphans within their gc grace are normal and not counted)."""
        return not [f for f in self.findings if not f.action.startswith("kept")]

    def of(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    def add(self, check: str, subject: str, detail: str, action: str = "") -> Finding:
        finding = Finding(check, subject, detail, action)
        self.findings.append(finding)
        return finding

    def render(self) -> str:
        mode = "repair" if self.repair else "dry run: nothing changed"
        scanned = ", ".join(f"{n:,} {what}" for what, n in self.scanned.items())
        lines = [f"doctor ({mode}): checked {scanned} in {self.seconds:.1f} s"]
        for check, title in TITLES.items():
            found = self.of(check)
            if found:
                lines.append(f"  {title}: {len(found)}")
                lines += [f"    {f.subject}: {f.detail} -> {f.action}" for f in found[:50]]
                if len(found) > 50:
                    lines.append(f"    … and {len(found) - 50} more")
        if self.gc is not None:
            lines.append(
                f"  gc: {self.gc.blobs_deleted} blobs ({self.gc.bytes_freed:,} bytes), "
                f"{self.gc.staged_dropped} staged uploads, {self.gc.orphans_removed} orphan files removed"
            )
        if not self.findings:
            lines.append("  all clear")
        return "\n".join(lines)


def age(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
