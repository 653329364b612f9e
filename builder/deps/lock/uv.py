"""The uv back-end: ``uv pip compile`` for pip sets, ``uv export`` for uv.lock projects.

uv runs as a subprocess with argv lists (never a shell); requirement text
goes in on stdin.  The runner is injected (``subprocess.run`` by default) so
tests can count or fake calls.  Results are remembered in a
:class:`~builder.deps.lock.ResolutionStore` under a key derived from the
canonical input, the index URLs, the Python version, the platform and the
hashes flag; a hit does no subprocess or network work.

>>> # locked = compile_pip(pip_set, python_version="3.12", store=MemoryResolutionStore())
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from builder.deps.canonical import digest
from builder.deps.lock import ResolutionStore
from builder.deps.lock.files import LOCK_SCHEME, PIP_PLATFORM
from builder.deps.model import PipSet
from builder.deps.pip import parse_requirements_text
from builder.errors import LockError

Runner = Callable[..., "subprocess.CompletedProcess[str]"]
DEFAULT_TIMEOUT = 300.0
_NETWORK_SIGNS = (
    "tcp connect error",
    "dns error",
    "failed to lookup address",
    "connection refused",
    "error sending request",
    "operation timed out",
    "network is unreachable",
)


def find_uv() -> str:
    """Path of the uv executable shipped with the ``uv`` package (else ``uv`` on PATH)."""
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        import shutil

        found = shutil.which("uv")
        if found is None:
            raise LockError("uv is not installed", hint="pip install uv") from None
        return found


def resolution_key(
    pip_set: PipSet, *, python_version: str, generate_hashes: bool, project_dir: Path | None = None
) -> str:
    """The store key of a compile: canonical input + indexes + python + platform + hashes flag.

    With ``project_dir``, the build metadata files of local-path requirements
    (pyproject.toml, setup.cfg, setup.py) are part of the key too, so editing
    a local package's dependencies is not answered from a stale resolution.
    """
    return "uv-pip-compile:" + digest(
        {
            "scheme": LOCK_SCHEME,
            "input": pip_set.canonical() | {"locked": False},
            "python_version": python_version,
            "platform": PIP_PLATFORM,
            "generate_hashes": generate_hashes,
            "local_metadata": _local_metadata(pip_set, project_dir),
        }
    )


_METADATA_FILES = ("pyproject.toml", "setup.cfg", "setup.py")


def _local_metadata(pip_set: PipSet, project_dir: Path | None) -> dict[str, str]:
    """sha256 of each local requirement's metadata files (``{"libs/x/pyproject.toml": "…"}``)."""
    if project_dir is None:
        return {}
    found: dict[str, str] = {}
    for rel in pip_set.local_paths:
        for name in _METADATA_FILES:
            path = project_dir / rel / name
            if path.is_file():
                found[f"{rel}/{name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


#: How long a resolution of unpinned requirements is reused before the index is asked again (seconds);
#: ``BUILDER_RESOLVE_TTL`` overrides it.
DEFAULT_RESOLVE_TTL = 3600.0


@dataclass(frozen=True, slots=True)
class ResolutionPolicy:
    """When a stored resolution may answer instead of the index.

    ``max_age`` seconds after it was made (None: forever); ``refresh`` asks
    the index now; ``offline`` uses the last resolution whatever its age and
    never asks the index (a LockError when there is none).
    """

    max_age: float | None = DEFAULT_RESOLVE_TTL
    refresh: bool = False
    offline: bool = False
    now: float | None = None

    @classmethod
    def from_env(cls, *, refresh: bool = False, offline: bool = False) -> ResolutionPolicy:
        """The default TTL, or ``$BUILDER_RESOLVE_TTL`` seconds when set to a number."""
        raw = os.environ.get("BUILDER_RESOLVE_TTL", "")
        try:
            ttl = float(raw) if raw.strip() else DEFAULT_RESOLVE_TTL
        except ValueError:
            ttl = DEFAULT_RESOLVE_TTL
        return cls(max_age=max(0.0, ttl), refresh=refresh, offline=offline)

    def fresh(self, stored: dict[str, Any]) -> bool:
        """Whether ``stored`` may be used instead of asking the index."""
        if self.offline:
            return True
        if self.refresh:
            return False
        if self.max_age is None:
            return True
        made = stored.get("resolved_at")
        now = time.time() if self.now is None else self.now
        return isinstance(made, (int, float)) and 0 <= now - made <= self.max_age


def compile_pip(
    pip_set: PipSet,
    *,
    python_version: str,
    store: ResolutionStore,
    generate_hashes: bool = False,
    runner: Runner | None = None,
    project_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    policy: ResolutionPolicy | None = None,
) -> PipSet:
    """Resolve ``pip_set`` to exact pins for linux/x86_64 and ``python_version``.

    Returns a PipSet (``locked=True``) of ``name==version`` lines, with
    hashes when asked.  A stored resolution answers while ``policy`` says it
    is fresh (default: forever, as for ``builder lock``).  Raises
    :class:`LockError` when uv fails, the index is unreachable, ``timeout``
    seconds pass, or an offline policy finds no stored resolution.
    """
    policy = policy or ResolutionPolicy(max_age=None)
    key = resolution_key(
        pip_set, python_version=python_version, generate_hashes=generate_hashes, project_dir=project_dir
    )
    cached = store.get(key)
    if cached is not None and isinstance(cached.get("requirements_txt"), str) and policy.fresh(cached):
        text = cached["requirements_txt"]
    elif policy.offline:
        raise LockError(
            "no earlier resolution of these pip requirements is stored (offline)",
            hint="plan once without --offline to resolve them",
        )
    else:
        if pip_set.local_paths and project_dir is None:
            raise LockError("local-path requirements need the project directory to be locked")
        text = _run_compile(pip_set, python_version, generate_hashes, runner, project_dir, timeout)
        store.put(
            key,
            {
                "requirements_txt": text,
                "python_version": python_version,
                "platform": PIP_PLATFORM,
                "resolved_at": time.time() if policy.now is None else policy.now,
            },
        )
    return _compiled_set(pip_set, text, project_dir)


def _compiled_set(source: PipSet, text: str, project_dir: Path | None) -> PipSet:
    parsed = parse_requirements_text(
        text, rel="requirements.txt", project_dir=project_dir or Path.cwd(), key_path="uv pip compile"
    )
    return replace(
        parsed,
        index_url=source.index_url,
        extra_index_urls=source.extra_index_urls,
        find_links=source.find_links,
        no_index=source.no_index,
        options=source.options,
        credentials=source.credentials,
        source=source.source,
        locked=True,
    )


def _compile_argv(pip_set: PipSet, python_version: str, generate_hashes: bool, constraints: str | None) -> list[str]:
    argv = [
        find_uv(),
        "pip",
        "compile",
        "-",
        "--python-version",
        python_version,
        "--python-platform",
        PIP_PLATFORM,
        "--no-header",
        "--no-annotate",
        "--quiet",
        "--no-config",
        "--no-python-downloads",
    ]
    if generate_hashes:
        argv.append("--generate-hashes")
    if pip_set.no_index:
        argv.append("--no-index")
    if pip_set.index_url:
        argv += ["--index-url", pip_set.index_url]
    for url in pip_set.extra_index_urls:
        argv += ["--extra-index-url", url]
    for link in pip_set.find_links:
        argv += ["--find-links", link]
    if constraints:
        argv += ["--constraint", constraints]
    return argv


def _run_compile(
    pip_set: PipSet,
    python_version: str,
    generate_hashes: bool,
    runner: Runner | None,
    project_dir: Path | None,
    timeout: float,
) -> str:
    stdin = "".join(r.text + "\n" for r in pip_set.requirements)
    with tempfile.TemporaryDirectory(prefix="builder-lock-") as tmp:
        constraints = None
        if pip_set.constraints:
            constraints = str(Path(tmp) / "constraints.txt")
            Path(constraints).write_text(pip_set.constraints_txt(), encoding="utf-8")
        argv = _compile_argv(pip_set, python_version, generate_hashes, constraints)
        extra_env = {}
        netrc = pip_set.netrc()
        if netrc is not None:  # index credentials, kept out of argv (and so out of error messages and ps)
            path = Path(tmp) / "netrc"
            path.touch(mode=0o600)
            path.write_bytes(netrc)
            extra_env["NETRC"] = str(path)
        return run_uv(
            argv,
            runner=runner,
            cwd=project_dir,
            stdin=stdin,
            timeout=timeout,
            what="uv pip compile",
            extra_env=extra_env,
        )


def export_uv_lock(
    project_dir: Path, *, runner: Runner | None = None, timeout: float = DEFAULT_TIMEOUT, hashes: bool = False
) -> str:
    """Requirements text exported from ``pyproject.toml`` + ``uv.lock`` without re-resolving.

    The project itself is left out (``--no-emit-project``): the build copies
    the project files separately.
    """
    for name in ("pyproject.toml", "uv.lock"):
        if not (project_dir / name).is_file():
            raise LockError(
                f"--from-uv-lock needs {name} in {project_dir}",
                hint="run `uv lock` (or `uv sync`) in the project first",
            )
    argv = [
        find_uv(),
        "export",
        "--format",
        "requirements-txt",
        "--frozen",
        "--no-header",
        "--no-annotate",
        "--no-emit-project",
        "--no-dev",
        "--no-config",
        "--no-python-downloads",
        "--project",
        str(project_dir),
    ]
    if not hashes:
        argv.append("--no-hashes")
    return run_uv(argv, runner=runner, cwd=project_dir, stdin=None, timeout=timeout, what="uv export")


def run_uv(
    argv: Sequence[str],
    *,
    runner: Runner | None,
    cwd: Path | None,
    stdin: str | None,
    timeout: float,
    what: str,
    extra_env: dict[str, str] | None = None,
) -> str:
    """Run a uv command and return stdout; every failure becomes a LockError."""
    env = {
        **os.environ,
        **(extra_env or {}),
        "UV_HTTP_RETRIES": os.environ.get("UV_HTTP_RETRIES", "1"),
        "UV_HTTP_TIMEOUT": os.environ.get("UV_HTTP_TIMEOUT", "30"),
        "UV_PYTHON_DOWNLOADS": "never",
        "NO_COLOR": "1",
    }
    kwargs: dict[str, Any] = {
        "capture_output": True,
        "text": True,
        "cwd": cwd,
        "env": env,
        "timeout": timeout,
        "check": False,
    }
    if stdin is not None:
        kwargs["input"] = stdin
    run = runner or subprocess.run  # looked up per call, so tests can patch subprocess.run
    try:
        result = run(list(argv), **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise LockError(
            f"{what} did not finish within {timeout:.0f} s",
            hint="check network access to the package index, or raise the timeout",
        ) from exc
    except OSError as exc:
        raise LockError(f"cannot run {what}: {exc.strerror or exc}", hint="is uv installed?") from exc
    if result.returncode != 0:
        raise _failure(what, result.stderr or "")
    return str(result.stdout)


def _failure(what: str, stderr: str) -> LockError:
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    detail = "; ".join(ln.strip() for ln in lines[-6:]) or "no error output"
    if any(sign in stderr.lower() for sign in _NETWORK_SIGNS):
        return LockError(
            f"{what} could not reach the package index: {detail}",
            hint="check network access and the index URL; without a lock, plans use the specs as written",
        )
    return LockError(f"{what} failed: {detail}", hint="fix the requirement named above and run `builder lock` again")
