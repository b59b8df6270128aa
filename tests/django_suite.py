"""
Django's own session tests, from the source distribution of the Django in use.

``SessionTestsMixin`` (``tests/sessions_tests/tests.py`` in Django's sdist)
is the contract every session backend keeps. The sdist of the exact version
installed is downloaded once with pip and unpacked under ``.cache/``;
nothing of it is copied into this repository.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
MEMBER = "tests/sessions_tests/"


def django_tests_dir(version: str = django.__version__) -> Path:
    """Return the directory that holds ``sessions_tests`` of a Django version."""
    target = ROOT / ".cache" / f"django-{version}-tests"
    if (target / "sessions_tests" / "tests.py").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        download, staging = Path(work) / "download", Path(work) / "tests"
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--no-binary", ":all:", "--dest", str(download), f"django=={version}",
            ],
            check=True,
        )  # fmt: skip
        (sdist,) = download.glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            top = archive.getnames()[0].split("/")[0]
            prefix = f"{top}/{MEMBER}"
            members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
            for member in members:
                member.name = "sessions_tests/" + member.name.removeprefix(prefix)
            archive.extractall(staging, members=members, filter="data")
        # A rename, so that a concurrent run never sees half a tree.
        if not target.exists():
            staging.rename(target)
    return target
