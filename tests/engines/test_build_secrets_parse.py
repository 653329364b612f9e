"""``--secret`` parsing and reading (builder.engines.build_secrets): buildx's syntax, errors naming the flag."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.engines.build_secrets import (
    MAX_SECRET_BYTES,
    BuildSecrets,
    SecretSource,
    parse_secrets,
    read_secrets,
    secret_ids_of,
    secrets_from,
)
from builder.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id=token,src=t.txt", SecretSource("token", "file", "t.txt")),
        ("id=token,source=t.txt", SecretSource("token", "file", "t.txt")),
        ("type=file,id=token,src=t.txt", SecretSource("token", "file", "t.txt")),
        ("id=token,env=API_TOKEN", SecretSource("token", "env", "API_TOKEN")),
        ("id=token,type=env,src=API_TOKEN", SecretSource("token", "env", "API_TOKEN")),
        ("id=TOKEN,type=env", SecretSource("TOKEN", "env", "TOKEN")),
        ("id=token, src=t.txt, required=false", SecretSource("token", "file", "t.txt", required=False)),
        ("id=token,src=t.txt,required", SecretSource("token", "file", "t.txt", required=True)),
        ('id=token,"src=a,b.txt"', SecretSource("token", "file", "a,b.txt")),
        ("ID=pip_index_url,SRC=u", SecretSource("pip_index_url", "file", "u")),
    ],
)
def test_the_buildx_forms_parse(text: str, expected: SecretSource) -> None:
    assert SecretSource.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"no id=NAME"),
        ("src=t.txt", r"no id=NAME"),
        ("id=token", r"no src=FILE"),
        ("id=token,type=file,env=X", r"env= needs type=env"),
        ("id=token,type=socket,src=x", r"type must be file or env, not 'socket'"),
        ("id=token,src=x,colour=red", r"unknown field 'colour' \(known: id, type, src, source, env, required\)"),
        ("id=token,src=x,src=y", r"src is given twice"),
        ("id=token,src", r"'src' is not key=value"),
        ("id=token,src=x,required=maybe", r"required must be true or false"),
        ("id=../etc/passwd,src=x", r"secret id '../etc/passwd' is not 1-64 letters"),
        ("id=.hidden,src=x", r"is not 1-64 letters"),
        ("id=" + "a" * 65 + ",src=x", r"is not 1-64 letters"),
        ("id=ca-bundle,src=x", r"reserved for builder's own secrets"),
        ("id=builder-netrc,src=x", r"reserved"),
        ("id=t,type=env,src=A,env=B", r"give the variable once"),
    ],
)
def test_malformed_values_name_the_flag_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        SecretSource.parse(text)
    assert caught.value.key_path == "--secret" and caught.value.hint and "--secret id=" in caught.value.hint


def test_a_duplicate_id_is_an_error() -> None:
    with pytest.raises(ConfigError, match="secret id 'a' is given twice"):
        parse_secrets(["id=a,src=x", "id=b,src=x", "id=a,env=Y"])


_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True).filter(
    lambda s: not s.startswith("builder-") and s != "ca-bundle"
)
_SOURCES = (
    st.text(st.characters(blacklist_characters=',"\r\n\x00', blacklist_categories=("Cs",)), min_size=1)
    .map(str.strip)
    .filter(bool)
)


@given(_IDS, _SOURCES, st.sampled_from(["file", "env"]), st.booleans(), st.permutations(range(4)))
def test_any_field_order_and_form_parses_to_the_same_source(
    secret_id: str, source: str, kind: str, required: bool, order: list[int]
) -> None:
    fields = [f"id={secret_id}", f"type={kind}", f"src={source}", f"required={str(required).lower()}"]
    text = ",".join(fields[i] for i in order)
    assert SecretSource.parse(text) == SecretSource(secret_id, kind, source, required)  # type: ignore[arg-type]


@given(st.text(max_size=80))
def test_any_text_parses_or_fails_with_a_config_error(text: str) -> None:
    try:
        parsed = SecretSource.parse(text)
    except ConfigError as exc:
        assert exc.key_path == "--secret"
    else:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", parsed.id)


def test_values_are_read_from_files_and_variables(tmp_path: Path) -> None:
    (tmp_path / "t").write_bytes(b"file-value\n")
    sources = parse_secrets([f"id=b,src={tmp_path / 't'}", "id=a,env=TOKEN_X"])
    secrets = read_secrets(sources, {"TOKEN_X": "env-value"})
    assert secrets.ids == ("a", "b")
    assert dict(secrets.values) == {"a": b"env-value", "b": b"file-value\n"}
    assert "value" not in repr(secrets) and "value" not in str(secrets)


def test_missing_sources_are_errors_unless_not_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"id=t: the file .*nope does not exist") as caught:
        read_secrets(parse_secrets([f"id=t,src={tmp_path / 'nope'}"]), {})
    assert caught.value.file == str(tmp_path / "nope") and "required=false" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="id=t: the environment variable NOPE is not set"):
        read_secrets(parse_secrets(["id=t,env=NOPE"]), {})
    with pytest.raises(ConfigError, match="cannot read"):
        read_secrets(parse_secrets([f"id=t,src={tmp_path}"]), {})  # a directory
    optional = read_secrets(
        parse_secrets([f"id=t,src={tmp_path / 'nope'},required=false", "id=u,env=NOPE,required=false"]), {}
    )
    assert optional.ids == ("t", "u") and dict(optional.values) == {}


def test_a_secret_over_buildkits_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * (MAX_SECRET_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than"):
        read_secrets(parse_secrets([f"id=big,src={tmp_path / 'big'}"]), {})


def test_the_api_forms() -> None:
    assert secrets_from(None) == BuildSecrets()
    given = secrets_from({"b": "two", "a": b"one"})
    assert given.ids == ("a", "b") and dict(given.values) == {"a": b"one", "b": b"two"}
    assert secrets_from(given) is given
    with pytest.raises(ConfigError, match="not one string"):
        secrets_from("id=a,src=x")
    with pytest.raises(ConfigError, match="secret id '/x'"):
        secrets_from({"/x": b""})
    # Planning needs the ids only: nothing is read (the file does not exist).
    assert secret_ids_of(["id=z,src=/does/not/exist", "id=y,env=UNSET_VAR"]) == ("y", "z")
    assert secret_ids_of({"k": b"v"}) == ("k",) and secret_ids_of(None) == ()
