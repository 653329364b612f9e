"""Registry errors leave the CLI as exit 6 (credentials) and 7 (unreachable), with a hint and no traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from builder.cli import main
from builder.cli.errors import EXIT_REGISTRY_AUTH, EXIT_REGISTRY_UNAVAILABLE, exit_code_for, run_guarded
from builder.errors import BuilderError, RegistryAuthError, RegistryUnavailable

NO_ENGINE = "unix:///nonexistent/buildkitd.sock"


@pytest.mark.parametrize(
    ("error", "code", "hint"),
    [
        (
            RegistryAuthError("registry 127.0.0.1:5001 refused the credentials", registry="127.0.0.1:5001"),
            6,
            "docker login 127.0.0.1:5001",
        ),
        (RegistryUnavailable("cannot reach registry 127.0.0.1:9: connection refused", registry="127.0.0.1:9"), 7, None),
    ],
)
def test_the_funnel_maps_registry_errors(
    error: BuilderError, code: int, hint: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    def command(_args: argparse.Namespace) -> int:
        raise error

    assert run_guarded(command, argparse.Namespace(), debug=False) == code
    err = capsys.readouterr().err
    assert error.message in err and "Traceback" not in err
    if hint:
        assert hint in err
    assert exit_code_for(error) == code
    assert (EXIT_REGISTRY_AUTH, EXIT_REGISTRY_UNAVAILABLE) == (6, 7)


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (["--push", "--tag", "app:dev"], "--push needs --tag to name a registry"),
        (["--push"], "--push needs --tag naming"),
    ],
)
def test_push_without_a_registry_in_the_tag_is_exit_2_before_any_engine(
    extra: list[str], pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cerebrium.toml").write_text('[cerebrium.deployment]\nname = "push-x"\n', encoding="utf-8")
    (tmp_path / "main.py").write_text("print(1)\n", encoding="utf-8")
    assert main(["build", str(tmp_path), "--engine", NO_ENGINE, *extra]) == 2
    err = capsys.readouterr().err
    assert pattern in err and "Traceback" not in err and "internal error" not in err
