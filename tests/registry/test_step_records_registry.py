"""Step records next to a registry cache, through builder's registry client: auth, docker's logins, errors."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_registry import FakeRegistry, digest_of, serve

from builder.engines.step_records import (
    ARTIFACT_TYPE,
    SCHEMA,
    TAG_SUFFIX,
    RecordsUnavailable,
    cache_manifest,
    read_records,
    write_records,
)
from builder.plan.cache_specs import CacheSpec, parse_cache_spec

DOCUMENT = {"schema": SCHEMA, "app": "shared", "steps": [{"id": "pip", "key": "sha256:" + "a" * 64}]}


@dataclass(frozen=True)
class Creds:
    username: str | None = "u"
    password: str | None = "p"
    identitytoken: str | None = None


def specs(reg: FakeRegistry, repo: str = "team/app") -> tuple[CacheSpec, CacheSpec]:
    ref = f"127.0.0.1:{reg.port}/{repo}:cache"
    to = parse_cache_spec(f"type=registry,ref={ref},mode=max", flag="--cache-to")
    return to, parse_cache_spec(f"type=registry,ref={ref}", flag="--cache-from")


@pytest.mark.parametrize("auth", ["", "basic", "bearer"])
def test_records_round_trip_with_the_registry_s_auth(auth: str) -> None:
    with serve(FakeRegistry(auth=auth)) as reg:
        to, frm = specs(reg)

        def hook(host: str) -> Creds:
            return Creds()

        assert read_records(frm, hook) is None and cache_manifest(frm, exporting=False, credentials=hook) is None
        where = write_records(to, DOCUMENT, hook)
        assert where == f"127.0.0.1:{reg.port}/team/app:cache{TAG_SUFFIX}"
        assert read_records(frm, hook) == DOCUMENT
        reg.add_image("team/app", "cache", ["sha256:" + "1" * 64])
        _media, body = reg.manifests[("team/app", "cache")]
        assert cache_manifest(frm, exporting=False, credentials=hook) == digest_of(body)
    _media, manifest = reg.manifests[("team/app", "cache" + TAG_SUFFIX)]
    assert json.loads(manifest)["artifactType"] == ARTIFACT_TYPE
    sent = [r for r in reg.requests if r[0] in ("PUT", "GET")]
    if auth == "basic":
        assert all(r[2].get("Authorization", "").startswith("Basic ") for r in sent if r[0] == "PUT")
    if auth == "bearer":
        assert any(r[2].get("Authorization") == "Bearer good-token" for r in sent)


def test_without_credentials_the_records_are_unavailable_with_a_login_hint() -> None:
    with serve(FakeRegistry(auth="basic")) as reg:
        to, frm = specs(reg)
        with pytest.raises(RecordsUnavailable, match="requires credentials") as info:
            write_records(to, DOCUMENT, lambda host: None)
        assert "docker login" in (info.value.hint or "")
        with pytest.raises(RecordsUnavailable, match="refused the credentials"):
            read_records(frm, lambda host: Creds(password="wrong"))


def test_docker_logins_are_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(FakeRegistry(auth="basic")) as reg:
        to, frm = specs(reg)
        auth = base64.b64encode(b"u:p").decode()
        (tmp_path / "config.json").write_text(json.dumps({"auths": {f"127.0.0.1:{reg.port}": {"auth": auth}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
        write_records(to, DOCUMENT)
        assert read_records(frm) == DOCUMENT


def test_a_manifest_that_is_not_step_records_is_refused() -> None:
    with serve(FakeRegistry()) as reg:
        _to, frm = specs(reg)
        reg.add_image("team/app", "cache" + TAG_SUFFIX, ["sha256:" + "1" * 64])
        with pytest.raises(RecordsUnavailable, match="not a step-records artifact"):
            read_records(frm, lambda host: None)
