"""The warm server's spare prepares an engine connection and the cache; builds use them only when they match."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import api
from builder.engines import buildkit
from builder.plan.context import file_rules
from builder.server.prewalk import rules_from_hint


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.alive = True

    @property
    def capabilities(self) -> object:
        self.calls.append("caps")
        return object()

    def workers(self) -> tuple[()]:
        self.calls.append("workers")
        if not self.alive:
            raise OSError("gone")
        return ()


class FakeEngine:
    def __init__(self, address: str) -> None:
        self.address = address
        self.client = FakeClient()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


@pytest.fixture()
def made(monkeypatch: pytest.MonkeyPatch) -> list[FakeEngine]:
    engines: list[FakeEngine] = []

    def connect(cls: object, address: str | None, **_connection: object) -> FakeEngine:
        engines.append(FakeEngine(address or ""))
        return engines[-1]

    monkeypatch.setattr(buildkit.BuildKitEngine, "connect", classmethod(connect))
    monkeypatch.delenv("BUILDKIT_HOST", raising=False)
    monkeypatch.setattr(api, "_prepared", api._Prepared())
    return engines


def test_prepared_engine_is_used_for_the_same_address(made: list[FakeEngine]) -> None:
    api.prepare("docker:///run/x.sock", None)
    assert made[0].client.calls == ["caps"]  # the capability probe happened ahead of the command
    with api._EngineConnection("docker:///run/x.sock") as connecting:
        engine = connecting.engine()
    assert engine is made[0] and len(made) == 1 and engine.closed == 0


def test_prepared_engine_for_another_address_is_closed_and_a_new_one_made(made: list[FakeEngine]) -> None:
    api.prepare("docker:///run/x.sock", None)
    with api._EngineConnection("docker:///run/other.sock") as connecting:
        engine = connecting.engine()
    assert made[0].closed == 1 and engine is made[1]


def test_auto_detection_never_takes_a_prepared_engine(made: list[FakeEngine]) -> None:
    api.prepare("docker:///run/x.sock", None)
    with api._EngineConnection(None) as connecting:  # several candidates: only a real connect may choose
        engine = connecting.engine()
    assert made[0].closed == 1 and engine is made[1]


def test_an_old_prepared_engine_is_checked_and_replaced_when_it_no_longer_answers(
    made: list[FakeEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "_PREPARED_FRESH_S", -1.0)
    api.prepare("docker:///run/x.sock", None)
    made[0].client.alive = False
    with api._EngineConnection("docker:///run/x.sock") as connecting:
        engine = connecting.engine()
    assert "workers" in made[0].client.calls and made[0].closed == 1 and engine is made[1]


def test_prepared_cache_is_used_for_the_same_directory_only(made: list[FakeEngine], tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "cache"
    api.prepare(None, str(root))
    prepared = api._prepared.store[1]  # type: ignore[index]
    with api._opened_cache(root, []) as store:
        assert store is prepared
    api.prepare(None, str(root))
    other = api._prepared.store[1]  # type: ignore[index]
    with api._opened_cache(tmp_path / "elsewhere", []) as store:
        assert store is not other and store is not None
    assert api._prepared.store is None


def test_the_hint_names_the_engine_and_cache_a_build_used(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seen: list[dict[str, object]] = []
    monkeypatch.setattr(api, "_hint_sink", seen.append)
    monkeypatch.setenv("BUILDKIT_HOST", "docker:///run/x.sock")
    config, _ = api.load_plan_config(Path(__file__).parents[2] / "fixtures" / "apps" / "minimal")
    api._note_hint(None, tmp_path, config)
    project = str(Path(config.project_dir).resolve())
    assert seen == [{"engine": "docker:///run/x.sock", "cache_dir": str(tmp_path), "project": project,
                     "rules": [["*"], [".*"], ["cerebrium.toml"]]}]
    # the spare reads back exactly the rules the build walked with
    assert rules_from_hint(seen[0]) == (project, file_rules(config))
