"""Provenance of a study run: configuration, seed, command, git commit, packages, machine.

`provenance` is taken by `studies.runner` before each study runs and written into its
``run.json`` and summary by `studies.output`.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "provenance"]

PACKAGES = ("precision_nn", "numpy", "scipy", "mpmath", "matplotlib", "dask", "distributed")
REPO = Path(__file__).resolve().parent.parent


def provenance(*, config: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
    """Where a run came from: configuration, seed, package versions, git commit, machine."""
    return {
        "config": config,
        "seed": seed,
        "command": _command(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def _command() -> str:
    """The command line of this run (``python -m studies ...`` when run as a module)."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name == "__main__.py" and Path(argv[0]).parent.name == "studies":
        argv[0] = "-m studies"
    return " ".join(["python", *argv])


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    """``<hash>`` of HEAD, with ``+dirty`` when tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")
