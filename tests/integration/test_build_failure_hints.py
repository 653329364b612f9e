"""Real failing builds on the engines: each common cause gets its one-line hint, the user's command and no script.

Every case is a genuine pip failure in the container (a C extension without gcc, a package needing a
system library, PyPI behind the intercepting proxy without its CA, a package with only Windows wheels).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli import main
from tests.integration.conftest import EngineTarget

pytestmark = pytest.mark.network  # the pip step reaches PyPI

CA = "/etc/ssl/certs/ca-certificates.crt"
MAIN = "def predict():\n    return 1\n"

CASES = {
    # netifaces 0.11.0 is an sdist only: it compiles a C extension
    "compiler": ('netifaces = "==0.11.0"', True, ["needs a C compiler", 'build-essential = "latest"']),
    # mysqlclient's setup asks pkg-config for the MySQL client library before compiling anything
    "system-library": ('mysqlclient = "==2.2.4"', True, ["a system library is missing", "pkg-config"]),
    # the proxy re-signs PyPI's certificate: without the CA bundle nothing can be fetched
    "tls": ('six = "==1.16.0"', False, ["TLS certificate verification failed", "--ca-bundle", "BUILDER_CA_BUNDLE"]),
    # pywin32 306 publishes Windows wheels only, and no sdist
    "no-wheel": ('pywin32 = "==306"', True, ["no release of pywin32==306 can be installed here", "for Linux"]),
}


def _app(tmp_path: Path, name: str, requirement: str) -> Path:
    app = tmp_path / name
    app.mkdir()
    (app / "main.py").write_text(MAIN)
    (app / "cerebrium.toml").write_text(
        f'[cerebrium.deployment]\nname = "hint-{name}"\npython_version = "3.11"\n\n'
        f"[cerebrium.dependencies.pip]\n{requirement}\n"
    )
    return app


@pytest.mark.parametrize("case", sorted(CASES))
def test_failed_step_names_the_cause_and_the_fix(
    case: str,
    engine_target: EngineTarget,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requirement, with_ca, expected = CASES[case]
    monkeypatch.delenv("BUILDER_CA_BUNDLE", raising=False)
    app = _app(tmp_path, case, requirement)
    args = [
        "build",
        str(app),
        *engine_target.cli_args,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--progress",
        "plain",
    ]
    assert main([*args, *(["--ca-bundle", CA] if with_ca else [])]) == 1
    err = capsys.readouterr().err
    hint = next(line for line in err.splitlines() if line.startswith("hint: "))
    for text in expected:
        assert text in hint, hint
    assert "error: step pip failed: the command did not complete successfully: exit code: 1" in err
    assert "  command: pip install -r requirements.txt" in err
    assert "set -eu" not in err and "uv_boot" not in err and "/bin/sh -c" not in err  # builder's script is not shown
