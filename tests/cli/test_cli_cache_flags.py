"""--cache-to / --cache-from on the command line and in the environment: exit 2 with the flag named, before planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli import main

APP = Path(__file__).resolve().parents[2] / "fixtures" / "apps" / "minimal"


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["build", str(APP), "--cache-to", "type=s3,secret_access_key=HUSH"], {}, "--cache-to: cache type 's3'"),
        (["build", str(APP), "--cache-from", "type=inline"], {}, "--cache-from: type=inline can only be exported"),
        (["build", str(APP)], {"BUILDER_CACHE_TO": "type=local,src=x"}, "BUILDER_CACHE_TO: 'src' applies to"),
        (
            ["build", str(APP)],
            {"BUILDER_CACHE_FROM": "h.io/a:c;type=local"},
            "BUILDER_CACHE_FROM: type=local needs src=",
        ),
        (["plan", str(APP), "--cache-from", "type=local,dest=x"], {}, "--cache-from: 'dest' applies to --cache-to"),
    ],
)
def test_bad_cache_values_exit_2_naming_the_flag(
    argv: list[str],
    env: dict[str, str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BUILDKIT_HOST", "unix:///nonexistent/buildkitd.sock")  # never reached
    assert main([*argv, "--no-resolve"]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err and "HUSH" not in err
    assert "hint: " in err


def test_flags_replace_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from argparse import Namespace

    from builder.cli.cache_flags import cache_from_args

    monkeypatch.setenv("BUILDER_CACHE_FROM", "h.io/env:c")
    assert [s.ref for s in cache_from_args(Namespace(cache_from=None), "import")] == ["h.io/env:c"]
    flags = Namespace(cache_from=["h.io/flag:c", "h.io/flag:c"])
    assert [s.ref for s in cache_from_args(flags, "import")] == ["h.io/flag:c"]
    assert cache_from_args(Namespace(cache_to=None), "export") == ()


def test_api_values_strings_specs_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.api import cache_specs_or_env
    from builder.errors import ConfigError
    from builder.plan.cache_specs import CacheSpec

    monkeypatch.setenv("BUILDER_CACHE_TO", "type=inline")
    assert cache_specs_or_env(None, "export") == (CacheSpec("inline"),)
    assert cache_specs_or_env((), "export") == ()
    assert cache_specs_or_env("type=local,dest=d", "export") == (CacheSpec("local", dest="d"),)
    spec = CacheSpec("registry", ref="h.io/a:c")
    assert cache_specs_or_env([spec, "h.io/a:c"], "import") == (spec,)
    with pytest.raises(ConfigError) as caught:
        cache_specs_or_env(["type=local,dest=d"], "import")
    assert caught.value.key_path == "--cache-from"
