"""Operator tools beside the services: backup and restore of a SQLite deployment, and `doctor`,
which checks that records and stored bytes agree and repairs what does not.

The CLI calls one function each and prints the report's `render()`; `ok` decides the exit code.
"""

from __future__ import annotations

from mediagen.maintenance.backup import BackupReport, BackupUnsupported, backup, read_manifest
from mediagen.maintenance.doctor import DoctorServices, doctor
from mediagen.maintenance.files import MaintenanceError
from mediagen.maintenance.findings import DoctorReport, Finding
from mediagen.maintenance.restore import RestoreRefused, RestoreReport, restore

__all__ = [
    "BackupReport",
    "BackupUnsupported",
    "DoctorReport",
    "DoctorServices",
    "Finding",
    "MaintenanceError",
    "RestoreRefused",
    "RestoreReport",
    "backup",
    "doctor",
    "read_manifest",
    "restore",
]
