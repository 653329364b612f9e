"""What integration tests run against: the engines and registries the scripts under ``scripts/`` started.

Each one wrote its address to an env file under ``.engine/`` (``scripts/engine-up``:
``.engine/<instance>/env``; ``scripts/registry-up``: ``.engine/registry/env`` and
``.engine/registry-auth/env``). This module only reads them; the fixtures live in
``conftest.py`` (the engine matrix) and ``fleet.py`` (registries and fleet runners).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.engines.buildkit.tls import TLSConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_DIR = REPO_ROOT / ".engine"


@dataclass(frozen=True)
class EngineTarget:
    """One engine to test against: its name and the environment engine-up exported."""

    name: str
    env: dict[str, str]

    @property
    def address(self) -> str:
        return self.env["BUILDKIT_HOST"]

    @property
    def tls(self) -> TLSConfig | None:
        """The TLS settings of a TCP engine (from Docker's DOCKER_CERT_PATH that engine-up printed)."""
        folder = self.env.get("DOCKER_CERT_PATH")
        if not folder:
            return None
        return TLSConfig(ca=Path(folder) / "ca.pem", cert=Path(folder) / "cert.pem", key=Path(folder) / "key.pem")

    @property
    def cli_args(self) -> list[str]:
        """``--engine`` and, for a TCP engine, the ``--tls-*`` flags, for ``builder`` command lines."""
        tls = self.tls
        extra = [] if tls is None else ["--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
        return ["--engine", self.address, *extra]


def read_env(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of an env file the scripts wrote."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            values[key.strip()] = value.strip()
    return values
