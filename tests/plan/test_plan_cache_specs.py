"""--cache-to / --cache-from parsing: buildx's syntax, canonical form, clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import ConfigError
from builder.plan.cache_specs import (
    CacheSpec,
    format_env_value,
    parse_cache_spec,
    parse_cache_specs,
    specs_from_env,
    split_env_value,
)

TO, FROM = "--cache-to", "--cache-from"


@pytest.mark.parametrize(
    ("flag", "text", "expected"),
    [
        (
            TO,
            "type=registry,ref=127.0.0.1:5000/a/b:cache,mode=max",
            CacheSpec("registry", ref="127.0.0.1:5000/a/b:cache", mode="max"),
        ),
        (TO, "type=inline", CacheSpec("inline")),
        (TO, "type=local,dest=/tmp/c", CacheSpec("local", dest="/tmp/c")),
        (TO, 'type=local,"dest=/tmp/a,b"', CacheSpec("local", dest="/tmp/a,b")),
        (FROM, "type=registry,ref=app", CacheSpec("registry", ref="docker.io/library/app:latest")),
        (FROM, "type=local,src=cache-dir,tag=v1", CacheSpec("local", src="cache-dir", tag="v1")),
        (FROM, "localhost:5000/app:cache", CacheSpec("registry", ref="localhost:5000/app:cache")),
        (
            TO,
            " TYPE=Registry , Ref=h.io/x:c , oci-mediatypes=TRUE ",
            CacheSpec("registry", ref="h.io/x:c", oci_mediatypes=True),
        ),
        (
            TO,
            "type=registry,ref=h.io/x:c,compression=zstd,compression-level=3,ignore-error=true",
            CacheSpec("registry", ref="h.io/x:c", compression="zstd", compression_level=3, ignore_error=True),
        ),
        (
            "BUILDER_CACHE_FROM",
            "type=registry,ref=h.io/x:c,registry.insecure=true",
            CacheSpec("registry", ref="h.io/x:c", registry_insecure=True),
        ),
    ],
)
def test_parse_accepts_buildx_syntax(flag: str, text: str, expected: CacheSpec) -> None:
    assert parse_cache_spec(text, flag=flag) == expected


def test_attrs_are_buildkit_names_in_canonical_order() -> None:
    spec = parse_cache_spec("mode=max,oci-mediatypes=true,ref=h.io/x:c,type=registry", flag=TO)
    assert spec.attrs() == {"ref": "h.io/x:c", "mode": "max", "oci-mediatypes": "true"}
    assert spec.format() == "type=registry,ref=h.io/x:c,mode=max,oci-mediatypes=true"
    assert list(spec.attrs()) == ["ref", "mode", "oci-mediatypes"]


@pytest.mark.parametrize(
    ("flag", "text", "message"),
    [
        (TO, "", "the value is empty"),
        (TO, "type=s3,secret_access_key=SHH", "cache type 's3' is not supported"),
        (TO, "type=gha,token=SHH", "cache type 'gha' is not supported"),
        (TO, "type=redis,ref=x", "unknown cache type 'redis'"),
        (TO, "ref=h.io/x:c", "no type= given"),
        (TO, "type=registry", "type=registry needs ref="),
        (TO, "type=local", "type=local needs dest="),
        (FROM, "type=local", "type=local needs src="),
        (FROM, "type=inline", "type=inline can only be exported"),
        (TO, "type=local,src=x", "'src' applies to --cache-from, not --cache-to"),
        (FROM, "type=registry,ref=h.io/x:c,mode=max", "'mode' applies to --cache-to, not --cache-from"),
        (TO, "type=registry,ref=h.io/x:c,mdoe=max", "did you mean 'mode'?"),
        (TO, "type=registry,ref=h.io/x:c,mode=all", "mode='all' is not min or max"),
        (TO, "type=registry,ref=h.io/x:c,ignore-error=yes", "ignore-error='yes' is not true or false"),
        (TO, "type=registry,ref=h.io/x:c,compression=lz4", "compression='lz4' is not known"),
        (TO, "type=registry,ref=h.io/x:c,compression-level=high", "compression-level='high'"),
        (TO, "type=registry,ref=UPPER/x", "invalid image reference"),
        (TO, "type=registry,ref=h.io/x:c,ref=h.io/y:c", "attribute 'ref' is given twice"),
        (TO, "type=inline,mode=max", "type=inline takes no attributes"),
        (TO, "type=local,dest=", "dest= is empty"),
        (FROM, "type=local,src=d,digest=md5:1", "is not sha256:<64 hex>"),
        (TO, "type=registry,ref=h.io/x:c,junk", "field 'junk' is not key=value"),
        (TO, 'type=local,"dest=a', "cannot read it as comma-separated fields"),
        (TO, "type=local,dest=a\nb", "a value must be one line"),
    ],
)
def test_errors_name_the_flag_and_the_problem(flag: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_cache_spec(text, flag=flag)
    assert message in str(caught.value)
    assert caught.value.key_path == flag
    assert caught.value.hint
    assert "SHH" not in str(caught.value) + (caught.value.hint or "")


def test_secret_looking_keys_are_not_repeated() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_cache_spec("type=registry,ref=h.io/x:c,password", flag=TO)
    assert "'password'" in str(caught.value)


def test_repeated_values_drop_duplicates_keep_order() -> None:
    specs = parse_cache_specs(["h.io/b:c", "type=registry,ref=h.io/a:c", "type=registry,ref=h.io/b:c"], flag=FROM)
    assert [s.ref for s in specs] == ["h.io/b:c", "h.io/a:c"]


def test_env_splits_on_semicolons_and_newlines_outside_quotes() -> None:
    assert split_env_value(' type=local,"dest=a;b" ;\n h.io/x:c\n\n') == ['type=local,"dest=a;b"', "h.io/x:c"]
    env = {"BUILDER_CACHE_FROM": "h.io/x:c;type=local,src=d", "BUILDER_CACHE_TO": ""}
    assert specs_from_env(env, "import") == (CacheSpec("registry", ref="h.io/x:c"), CacheSpec("local", src="d"))
    assert specs_from_env(env, "export") == ()
    with pytest.raises(ConfigError, match="applies to --cache-from") as caught:
        specs_from_env({"BUILDER_CACHE_TO": "type=local,src=d"}, "export")
    assert caught.value.key_path == "BUILDER_CACHE_TO"


def test_repr_shows_only_set_fields() -> None:
    assert repr(CacheSpec("inline")) == "CacheSpec(type='inline')"


# --- canonical form -------------------------------------------------------

_PATH = (
    st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), min_size=1, max_size=30)
    .map(str.strip)
    .filter(bool)
)
_REF = st.builds(
    lambda host, repo, tag: f"{host}/{repo}:{tag}",
    st.sampled_from(["127.0.0.1:5000", "registry.example.com", "localhost:5055"]),
    st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True),
)
_OPT_BOOL = st.none() | st.booleans()
_TUNING = {
    "mode": st.none() | st.sampled_from(["min", "max"]),
    "compression": st.none() | st.sampled_from(["gzip", "zstd", "uncompressed", "estargz"]),
    "compression_level": st.none() | st.integers(0, 22),
    "force_compression": _OPT_BOOL,
    "oci_mediatypes": _OPT_BOOL,
    "image_manifest": _OPT_BOOL,
    "ignore_error": _OPT_BOOL,
}
_TAG = st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)
_EXPORTS = (
    st.just(CacheSpec("inline"))
    | st.builds(CacheSpec, st.just("registry"), ref=_REF, registry_insecure=_OPT_BOOL, **_TUNING)
    | st.builds(CacheSpec, st.just("local"), dest=_PATH, tag=_TAG, **_TUNING)
)
_IMPORTS = st.builds(CacheSpec, st.just("registry"), ref=_REF, registry_insecure=_OPT_BOOL) | st.builds(
    CacheSpec,
    st.just("local"),
    src=_PATH,
    tag=_TAG,
    digest=st.none() | st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True),
)


@settings(max_examples=60)
@given(_EXPORTS)
def test_export_round_trips_through_canonical_text(spec: CacheSpec) -> None:
    assert parse_cache_spec(spec.format(), flag=TO) == spec


@settings(max_examples=60)
@given(_IMPORTS)
def test_import_round_trips_through_canonical_text(spec: CacheSpec) -> None:
    assert parse_cache_spec(spec.format(), flag=FROM) == spec


@settings(max_examples=60)
@given(st.lists(_IMPORTS, max_size=4, unique=True))
def test_env_value_round_trips(specs: list[CacheSpec]) -> None:
    assert specs_from_env({"BUILDER_CACHE_FROM": format_env_value(specs)}, "import") == tuple(specs)


@settings(max_examples=60)
@given(st.text(max_size=60), st.sampled_from([TO, FROM, "BUILDER_CACHE_TO"]))
def test_parser_never_raises_anything_but_config_error(text: str, flag: str) -> None:
    try:
        spec = parse_cache_spec(text, flag=flag)
    except ConfigError as exc:
        assert exc.key_path == flag
        assert exc.hint
    else:
        assert parse_cache_spec(spec.format(), flag=flag) == spec
