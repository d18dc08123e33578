"""Pinned packages from the npm registry, fetched at test time and never vendored.

``npm pack`` downloads the tarball of one exact version; its sha512 must equal the
``dist.integrity`` the registry publishes for that version, which the test pins. The
verified tarball is kept in pytest's cache directory and checked again on every run,
so a tampered cache fails instead of testing something else. Files are read from the
verified tarball itself. Without npm, or without the registry, the calling test skips.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class PinnedPackage:
    name: str
    version: str
    integrity: str  # dist.integrity of the version, as the npm registry publishes it

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


def integrity_of(tarball: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()


def pinned_file(package: PinnedPackage, member: str, request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of ``member`` (``package/...``) of the verified tarball of ``package``."""
    tarball = _cached_tarball(package, request, tmp_path_factory)
    with tarfile.open(tarball) as archive:
        manifest = archive.extractfile("package/package.json")
        found = archive.extractfile(member)
        assert manifest is not None and found is not None, f"{member} is not in {package.spec}"
        described = json.load(manifest)
        code = found.read()
    assert (described["name"], described["version"]) == (package.name, package.version)
    return code


def _cached_tarball(package: PinnedPackage, request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    label = re.sub(r"[^a-z0-9.]+", "-", package.spec.lower()).strip("-")
    cache = getattr(request.config, "cache", None)
    root = cache.mkdir(label) if cache is not None else tmp_path_factory.mktemp(label)
    tarball = root / "package.tgz"
    if not tarball.exists():
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            packed = _npm_pack(package, Path(scratch))
            assert integrity_of(packed) == package.integrity, \
                f"{packed.name} is not the pinned release of {package.spec}"
            os.replace(packed, tarball)
    assert integrity_of(tarball) == package.integrity, f"{tarball} is not {package.spec}"
    return tarball


def _npm_pack(package: PinnedPackage, destination: Path) -> Path:
    """``npm pack`` the pinned version into ``destination``; skip when npm can't."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed, so {package.spec} cannot be fetched")
    env = {**os.environ, "npm_config_fund": "false", "npm_config_audit": "false",
           "npm_config_update_notifier": "false", "npm_config_loglevel": "error"}
    try:
        done = subprocess.run(
            [npm, "pack", package.spec, "--ignore-scripts", "--pack-destination",
             str(destination)],
            cwd=destination, env=env, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm pack {package.spec} timed out (registry unreachable?)")
    tarballs = sorted(destination.glob("*.tgz"))
    if done.returncode != 0 or len(tarballs) != 1:
        errors = [line for line in done.stderr.splitlines() if line.startswith("npm error")]
        pytest.skip(f"npm pack {package.spec} failed (exit {done.returncode}): "
                    + (" / ".join(errors[:2]) or done.stderr.strip()[-300:]))
    return tarballs[0]
