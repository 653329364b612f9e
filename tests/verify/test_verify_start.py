"""A container the engine will not start is the app's failure (exit 5), said in words."""

from __future__ import annotations

from typing import Any

import pytest

from builder.cli.commands.verify import failure_json
from builder.errors import EngineError, EngineUnavailable, VerifyFailed
from builder.verify import DockerRuntime, VerifySettings
from builder.verify_start import start_failure

DOCKERD26 = (
    "Docker daemon at unix:///x: POST /containers/abc/start answered HTTP 400: failed to create task for "
    "container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start "
    'container process: exec: "uvicorn": executable file not found in $PATH: unknown'
)
DOCKERD20 = (
    "Docker daemon at unix:///x: POST /containers/abc/start answered HTTP 400: OCI runtime create failed: "
    'container_linux.go:380: starting container process caused: exec: "/app/run.sh": permission denied: '
    "unknown"
)


@pytest.mark.parametrize(
    ("engine_message", "reason", "hint"),
    [
        (DOCKERD26, "its entrypoint program 'uvicorn' is not in the image", "[cerebrium.dependencies.pip]"),
        (DOCKERD20, "its entrypoint program '/app/run.sh' is not executable", "chmod +x"),
        ('exec: "/opt/x": stat /opt/x: no such file or directory', "'/opt/x' is not in the image", "entrypoint"),
        ('exec: "./serve": exec format error', "not a program for this platform", "#!"),
    ],
)
def test_start_failures_name_the_program_and_the_fix(engine_message: str, reason: str, hint: str) -> None:
    failure = start_failure("app:dev", EngineError(engine_message))
    assert isinstance(failure, VerifyFailed)
    assert failure.message.startswith("app:dev: the container could not start: ")
    assert reason in failure.message and failure.message.endswith("; the app printed nothing")
    assert "HTTP 400" not in failure.message
    assert failure.hint is not None and hint in failure.hint


def test_an_unknown_start_error_is_still_a_verify_failure_with_the_engines_words() -> None:
    failure = start_failure("app:dev", EngineError("answered HTTP 500: cgroup trouble"))
    assert isinstance(failure, VerifyFailed) and "cgroup trouble" in failure.message


def test_an_engine_that_does_not_answer_stays_an_engine_error() -> None:
    gone = EngineUnavailable("no Docker daemon answers", tried=("unix:///x",))
    assert start_failure("app:dev", gone) is gone


class RefusingAPI:
    where = "fake://"

    def __init__(self) -> None:
        self.removed: list[str] = []

    def has_network(self, name: str) -> bool:  # the remote-engine verify asks this
        return False

    def create_container(self, spec: dict[str, Any], *, name: str | None = None) -> str:
        return "abc"

    def start_container(self, container_id: str) -> None:
        raise EngineError(DOCKERD26)

    def remove_container(self, container_id: str) -> None:
        self.removed.append(container_id)

    def exec_in(self, *args: object, **kwargs: object) -> object:  # the remote-engine verify's prober
        raise AssertionError("never probed")


def test_docker_runtime_turns_a_refused_start_into_verify_failed_and_removes_the_container() -> None:
    api = RefusingAPI()
    with pytest.raises(VerifyFailed, match="'uvicorn' is not in the image") as info:
        DockerRuntime(api).run("app:dev", VerifySettings(port=8000))  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, EngineError)
    assert api.removed == ["abc"]


def test_failure_json_is_a_result_object() -> None:
    result = failure_json("app:dev", VerifyFailed("app:dev: the app exited", logs=["boom"], hint="fix it"))
    assert result == {
        "image": "app:dev",
        "ready": False,
        "error": "app:dev: the app exited",
        "hint": "fix it",
        "logs_tail": ["boom"],
        "exit_code": 5,
    }
