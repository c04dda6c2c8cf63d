"""Scratch folders named after the process that owns them, and the removal of abandoned ones.

A process killed with SIGKILL cannot remove its own temporary folder, so each such folder ends in
``-<pid>`` and the next process that uses the same place removes those whose owner is gone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable


def owned_name(prefix: str) -> str:
    """``<prefix>-<this process id>``."""
    return f"{prefix}-{os.getpid()}"


def remove_abandoned(folders: Iterable[Path]) -> None:
    """Removes each ``...-<pid>`` folder whose process no longer runs."""
    for folder in folders:
        try:
            pid = int(folder.name.rsplit("-", 1)[1])
        except (IndexError, ValueError):
            continue  # not a folder named by owned_name
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # another user's live process
            pass
