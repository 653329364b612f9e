"""A failed solve is a registry error only when the failure is a pull or a push, never a command step's output."""

from __future__ import annotations

from builder.engines.buildkit.session import AuthProvider
from builder.engines.buildkit.solve import registry_failure
from builder.errors import ConfigError, EngineError, RegistryAuthError, RegistryUnavailable, SolveFailed, StepFailure

REG = "127.0.0.1:5001"
REFUSED = f"unexpected status from HEAD request to https://{REG}/v2/base/manifests/1: 401 Unauthorized"


def _failed(step: str, text: str) -> SolveFailed:
    return SolveFailed(f"step {step} failed: {text}", failure=StepFailure(step, "cmd"))


def test_a_base_pull_refused_is_an_auth_error_said_by_whether_credentials_were_given() -> None:
    auth = AuthProvider(lambda host: None)
    found = registry_failure(_failed("base", REFUSED), auth, (REG,))
    assert isinstance(found, RegistryAuthError) and "needs credentials" in found.message
    auth.answered.append(REG)
    refused = registry_failure(_failed("base", REFUSED), auth, (REG,))
    assert isinstance(refused, RegistryAuthError) and "refused the credentials" in refused.message


def test_an_export_failure_without_a_step_names_the_push() -> None:
    auth = AuthProvider(lambda host: None)
    text = f"failed to push {REG}/app:1: dial tcp {REG}: connect: connection refused"
    found = registry_failure(EngineError(f"build failed: {text}"), auth, (REG,))
    assert isinstance(found, RegistryUnavailable) and "(push)" in found.message


def test_command_steps_are_never_registry_errors() -> None:
    auth = AuthProvider(lambda host: None)
    text = "pip: dial tcp 10.0.0.1:443: connect: connection refused; 401 Unauthorized"
    assert registry_failure(_failed("pip", text), auth, (REG,)) is None
    assert registry_failure(_failed("dockerfile", text), auth, (REG,)) is None


def test_a_lookup_that_failed_during_the_build_explains_it_first() -> None:
    auth = AuthProvider(lambda host: None)
    helper = RegistryAuthError("credential helper docker-credential-x is not installed", registry=REG)
    auth.errors.append(helper)
    assert registry_failure(_failed("base", REFUSED), auth, (REG,)) is helper
    broken = AuthProvider(lambda host: None)
    config = ConfigError("/x/config.json: the docker config is not valid JSON")
    broken.errors.append(config)
    assert registry_failure(EngineError("failed to push"), broken, (REG,)) is config
