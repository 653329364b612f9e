"""Helpers for dependency tests: Config objects, wheels, conda channels, counting runners."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.config.model import Config, Dependencies, DependencyPaths, Deployment

FIXTURES_DEPS = Path(__file__).resolve().parents[2] / "fixtures" / "deps"


def make_config(
    project: Path,
    *,
    pip: dict[str, str] | None = None,
    apt: dict[str, str] | None = None,
    conda: dict[str, str] | None = None,
    paths: dict[str, str] | None = None,
    python_version: str = "3.12",
) -> Config:
    """A Config rooted at ``project`` with the given dependency tables (as load_config stores them)."""
    project.mkdir(parents=True, exist_ok=True)
    deps = Dependencies(
        pip=tuple(sorted((pip or {}).items())),
        apt=tuple(sorted((apt or {}).items())),
        conda=tuple(sorted((conda or {}).items())),
        paths=DependencyPaths(**(paths or {})),
    )
    return Config(
        path=project / "cerebrium.toml",
        deployment=Deployment(name="t", python_version=python_version),  # type: ignore[arg-type]
        dependencies=deps,
    )


def write_wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal valid py3-none-any wheel (enough for uv to resolve against --find-links)."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    files = {
        f"{name}/__init__.py": "",
        f"{dist}/METADATA": meta,
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    target = directory / f"{name}-{version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(target, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(text)}")
        record.append(f"{dist}/RECORD,,")
        zf.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return target


WHEELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("alpha", "1.0", ()),
    ("alpha", "1.1", ("beta>=2",)),
    ("beta", "2.0", ()),
    ("beta", "2.5", ()),
)


def load_channel_module() -> Any:
    spec = importlib.util.spec_from_file_location("conda_channel_fixture", FIXTURES_DEPS / "conda_channel.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def make_wheel_project(project: Path) -> Path:
    """A project whose requirements resolve offline against ./wheels (--no-index)."""
    for name, version, requires in WHEELS:
        write_wheel(project / "wheels", name, version, requires)
    (project / "requirements.txt").write_text("--no-index\n--find-links ./wheels\nalpha\n")
    (project / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "proj"\n\n[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'
    )
    return project


class CountingRunner:
    """A subprocess runner that records calls and delegates (or refuses) to run them."""

    def __init__(self, delegate: Callable[..., Any] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.delegate = delegate

    def __call__(self, argv: list[str], **kwargs: Any) -> Any:
        self.calls.append(list(argv))
        if self.delegate is None:
            raise AssertionError(f"unexpected subprocess: {argv}")
        return self.delegate(argv, **kwargs)
