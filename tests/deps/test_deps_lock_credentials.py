"""``uv pip compile`` reaches an index that needs the credentials written in its URL, without them in argv."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from builder.deps.lock import MemoryResolutionStore
from builder.deps.lock.uv import compile_pip
from builder.deps.pip import pip_set_from_file
from tests.integration.local_index import LocalIndex, write_wheel


def test_compile_authenticates_through_a_netrc_not_argv(tmp_path: Path) -> None:
    token = f"T0KEN{uuid.uuid4().hex}"
    served = tmp_path / "served"
    seen: list[Any] = []

    def runner(argv: list[str], **kwargs: Any) -> Any:
        import subprocess

        seen.append((argv, kwargs.get("input")))
        return subprocess.run(argv, **kwargs)

    with LocalIndex(served, auth=("alice", token)) as index:
        write_wheel(served / "files", "credpkg", "1.0", "VALUE = 1\n")
        write_wheel(served / "files", "credpkg", "1.1", "VALUE = 2\n")
        (tmp_path / "requirements.txt").write_text(f"--index-url {index.url('simple/', credentials=True)}\ncredpkg\n")
        pip_set = pip_set_from_file("requirements.txt", project_dir=tmp_path)
        pinned = compile_pip(
            pip_set, python_version="3.11", store=MemoryResolutionStore(), runner=runner, project_dir=tmp_path
        )
        assert index.authorized > 0
    assert [r.line for r in pinned.requirements] == ["credpkg==1.1"]
    assert pinned.netrc() == pip_set.netrc() is not None  # the build still has them for its secret
    assert token not in repr(seen)
    assert token not in repr(pinned)
