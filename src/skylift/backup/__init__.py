"""Backup and restore of an app's state: `skylift backup` and `skylift restore`."""

from skylift.backup.archive import BackupError, Manifest, verify
from skylift.backup.restore import restore
from skylift.backup.snapshot import take

__all__ = ["BackupError", "Manifest", "restore", "take", "verify"]
