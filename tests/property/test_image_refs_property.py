"""Properties of image references and registry challenges (hypothesis)."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from builder.plan.images import normalize_image, parse_image
from builder.registry.challenge import parse_challenge
from builder.registry.transport import api_host

# no "." and no ":" (a first component with one is a registry host, as docker reads it)
component = st.from_regex(r"[a-z0-9]{1,6}([_-][a-z0-9]{1,4}){0,2}", fullmatch=True)
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}", fullmatch=True)
host = st.sampled_from(["ghcr.io", "127.0.0.1:5000", "localhost:5055", "registry.example.com", "my-reg.io:443"])
repo = st.lists(component, min_size=1, max_size=3).map("/".join)


@given(st.one_of(st.none(), host), repo, st.one_of(st.none(), tag))
def test_normal_form_is_a_fixed_point(registry: str | None, path: str, version: str | None) -> None:
    text = (f"{registry}/" if registry else "") + path + (f":{version}" if version else "")
    once = normalize_image(text)
    assert normalize_image(once) == once
    parsed = parse_image(once)
    assert parsed.tag == (version or "latest")
    assert parsed.registry == (registry.lower() if registry else "docker.io")


@given(component, st.one_of(st.none(), tag))
def test_docker_hub_spellings_are_one_reference(name: str, version: str | None) -> None:
    suffix = f":{version}" if version else ""
    forms = {
        normalize_image(f"{prefix}{name}{suffix}")
        for prefix in ("", "docker.io/", "docker.io/library/", "index.docker.io/", "registry-1.docker.io/library/")
    }
    assert forms == {f"docker.io/library/{name}:{version or 'latest'}"}
    assert api_host(parse_image(name).registry) == "registry-1.docker.io"


token = st.text(alphabet=string.ascii_letters + string.digits + "/:._-", min_size=1, max_size=20)
quoted = st.text(alphabet=string.ascii_letters + string.digits + "/:._-,= ", min_size=0, max_size=30)


@given(
    st.sampled_from(["Bearer", "Basic", "bearer"]),
    st.dictionaries(st.sampled_from(["realm", "service", "scope", "error"]), quoted, min_size=1),
)
def test_challenge_parameters_round_trip(scheme: str, params: dict[str, str]) -> None:
    header = scheme + " " + ",".join(f'{k}="{v}"' for k, v in params.items())
    found = parse_challenge(header)
    assert found is not None
    assert found.scheme == scheme.lower()
    assert dict(found.params) == params


@given(token, token)
def test_unquoted_challenge_values(realm: str, service: str) -> None:
    found = parse_challenge(f"Bearer realm={realm.replace(',', '')},service={service.replace(',', '')}")
    assert found is not None and found.get("realm") == realm.replace(",", "")
