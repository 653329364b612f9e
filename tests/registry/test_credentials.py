"""Registry credentials read like docker reads them: config.json auths, credsStore, credHelpers."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.errors import ConfigError, RegistryAuthError
from builder.registry.credentials import DOCKER_HUB, Credentials, config_dir, lookup, normalize_host

SECRET = "pa55-w0rd-never-shown"


def _env(config: Path, path: str = "/usr/bin:/bin") -> dict[str, str]:
    return {"DOCKER_CONFIG": str(config), "PATH": path, "HOME": "/nonexistent"}


def _write(folder: Path, content: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    (folder / "config.json").write_text(text, encoding="utf-8")
    return folder


def _helper(bin_dir: Path, name: str, script: str) -> str:
    """A docker-credential-NAME script in ``bin_dir``; returns a PATH that finds it first."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    program = bin_dir / f"docker-credential-{name}"
    program.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return f"{bin_dir}:/usr/bin:/bin"


def test_base64_auth_entry(tmp_path: Path) -> None:
    auth = base64.b64encode(f"ci:{SECRET}".encode()).decode()
    folder = _write(tmp_path / "d", {"auths": {"https://127.0.0.1:5000": {"auth": auth}}})
    found = lookup("127.0.0.1:5000", env=_env(folder))
    assert found == Credentials("127.0.0.1:5000", "ci", SECRET, "", "config.json auths")


def test_username_password_and_identity_token_entries(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "d",
        {
            "auths": {
                "reg.example:443": {"username": "u", "password": SECRET},
                "tok.example": {"identitytoken": "refresh-123"},
            }
        },
    )
    assert lookup("reg.example:443", env=_env(folder)) == Credentials(
        "reg.example:443", "u", SECRET, "", "config.json auths"
    )
    token = lookup("tok.example", env=_env(folder))
    assert token is not None and token.identity_token == "refresh-123" and token.username == ""
    assert token.engine_auth() == {"identitytoken": "refresh-123", "serveraddress": "tok.example"}


def test_unknown_host_empty_entry_and_missing_config_are_anonymous(tmp_path: Path) -> None:
    folder = _write(tmp_path / "d", {"auths": {"a.example": {}}})
    assert lookup("a.example", env=_env(folder)) is None
    assert lookup("b.example", env=_env(folder)) is None
    assert lookup("a.example", env=_env(tmp_path / "none")) is None
    assert lookup("a.example", env=_env(_write(tmp_path / "empty", ""))) is None


def test_default_config_dir_is_home_docker(tmp_path: Path) -> None:
    assert config_dir({"HOME": str(tmp_path)}) == tmp_path / ".docker"
    assert config_dir({"HOME": str(tmp_path), "DOCKER_CONFIG": "/x"}) == Path("/x")


def test_docker_hub_aliases_share_one_entry(tmp_path: Path) -> None:
    folder = _write(tmp_path / "d", {"auths": {DOCKER_HUB: {"username": "hub", "password": SECRET}}})
    for host in ("docker.io", "index.docker.io", "registry-1.docker.io", DOCKER_HUB):
        found = lookup(host, env=_env(folder))
        assert found is not None and found.username == "hub" and found.server == DOCKER_HUB


def test_repr_and_str_never_show_the_secret() -> None:
    creds = Credentials("h:1", "user", SECRET, "tok-secret")
    assert SECRET not in repr(creds) and SECRET not in str(creds) and "tok-secret" not in repr(creds)
    assert "user" in repr(creds)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ({"auths": []}, "'auths' must be a JSON object"),
        ({"auths": {"h": "x"}}, "'auths.h' must be a JSON object"),
        ({"auths": {"h": {"auth": "!!!"}}}, "auths.h.auth is not base64"),
        ({"auths": {"h": {"auth": base64.b64encode(b"nocolon").decode()}}}, "no 'user:password' pair"),
        ({"auths": {"h": {"password": 5}}}, "auths.h.password must be a string"),
        ({"credsStore": 3}, "'credsStore' must name a credential helper"),
        ({"credHelpers": {"h": "../evil"}}, "must name a credential helper"),
    ],
)
def test_malformed_config_names_the_file_and_the_problem(tmp_path: Path, content: object, fragment: str) -> None:
    folder = _write(tmp_path / "d", content)
    with pytest.raises(ConfigError) as info:
        lookup("h", env=_env(folder))
    assert str(folder / "config.json") in info.value.message
    assert fragment in info.value.message
    assert info.value.file == str(folder / "config.json")


def test_cred_helper_gets_the_server_on_stdin(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    path = _helper(
        tmp_path / "bin",
        "testhelper",
        f'[ "$1" = get ] || exit 3\ncat > {seen}\nprintf \'{{"ServerURL":"x","Username":"hu","Secret":"{SECRET}"}}\'\n',
    )
    folder = _write(tmp_path / "d", {"credHelpers": {"127.0.0.1:5001": "testhelper"}})
    found = lookup("127.0.0.1:5001", env=_env(folder, path))
    assert found is not None and (found.username, found.secret) == ("hu", SECRET)
    assert found.source == "helper docker-credential-testhelper"
    assert seen.read_text() == "127.0.0.1:5001"


def test_creds_store_and_token_username(tmp_path: Path) -> None:
    path = _helper(tmp_path / "bin", "store", 'printf \'{"Username":"<token>","Secret":"idtok"}\'\n')
    folder = _write(tmp_path / "d", {"credsStore": "store"})
    found = lookup("any.example", env=_env(folder, path))
    assert found is not None and found.identity_token == "idtok" and found.secret == ""


def test_cred_helpers_win_over_creds_store_and_auths(tmp_path: Path) -> None:
    path = _helper(tmp_path / "bin", "one", 'printf \'{"Username":"from-helper","Secret":"s"}\'\n')
    _helper(tmp_path / "bin", "store", "exit 9\n")
    folder = _write(
        tmp_path / "d",
        {
            "credHelpers": {"h.example": "one"},
            "credsStore": "store",
            "auths": {"h.example": {"username": "file", "password": "p"}},
        },
    )
    found = lookup("h.example", env=_env(folder, path))
    assert found is not None and found.username == "from-helper"


def test_store_without_the_host_falls_back_to_auths(tmp_path: Path) -> None:
    path = _helper(tmp_path / "bin", "store", "echo 'credentials not found in native keychain'\nexit 1\n")
    folder = _write(tmp_path / "d", {"credsStore": "store", "auths": {"h.example": {"username": "f", "password": "p"}}})
    found = lookup("h.example", env=_env(folder, path))
    assert found is not None and found.username == "f"
    assert lookup("other.example", env=_env(folder, path)) is None


def test_missing_helper_is_a_clear_registry_auth_error(tmp_path: Path) -> None:
    folder = _write(tmp_path / "d", {"credHelpers": {"h.example": "nowhere"}})
    with pytest.raises(RegistryAuthError) as info:
        lookup("h.example", env=_env(folder, str(tmp_path / "empty-bin")))
    assert "docker-credential-nowhere" in info.value.message and "not installed" in info.value.message
    assert info.value.host == "h.example"


def test_failing_helper_output_is_not_echoed(tmp_path: Path) -> None:
    path = _helper(tmp_path / "bin", "leaky", f"echo {SECRET}\nexit 2\n")
    folder = _write(tmp_path / "d", {"credsStore": "leaky"})
    with pytest.raises(RegistryAuthError) as info:
        lookup("h.example", env=_env(folder, path))
    assert "exit 2" in info.value.message and SECRET not in info.value.message
    path = _helper(tmp_path / "bin2", "garbled", f"echo not-json-{SECRET}\n")
    folder = _write(tmp_path / "e", {"credsStore": "garbled"})
    with pytest.raises(RegistryAuthError, match="no JSON") as info2:
        lookup("h.example", env=_env(folder, path))
    assert SECRET not in info2.value.message


_HOSTS = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,10}[a-z0-9])?(\.[a-z0-9]{1,8}){0,2}(:[0-9]{1,5})?", fullmatch=True)


@given(
    host=_HOSTS,
    scheme=st.sampled_from(["", "http://", "https://", "HTTPS://"]),
    tail=st.sampled_from(["", "/", "/v2/", "/v1/"]),
)
def test_normalize_host_ignores_scheme_path_and_case(host: str, scheme: str, tail: str) -> None:
    expected = "docker.io" if host in {"docker.io", "index.docker.io", "registry-1.docker.io"} else host
    assert normalize_host(scheme + host.upper() + tail) == expected
    assert normalize_host(normalize_host(scheme + host + tail)) == expected


def test_docker_names_of_the_secret_fields() -> None:
    """The registry client's hook reads ``password`` / ``identitytoken`` (docker's config names)."""
    creds = Credentials("h:1", "u", SECRET, "tok")
    assert (creds.password, creds.identitytoken) == (SECRET, "tok")
