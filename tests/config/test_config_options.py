"""Every option of the reference: one valid and one invalid row each.

Rows are (TOML snippet, key path, message regex).  A ``None`` regex means the
snippet must load cleanly with no diagnostic at that key.  Snippets without a
``[cerebrium.deployment]`` table get ``name = "app"`` prepended.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from builder.config import LoadResult, load

DEPLOYMENT = "[cerebrium.deployment]\n"
RUNTIME = '[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["python", "main.py"]\n'


def load_snippet(tmp_path: Path, snippet: str) -> LoadResult:
    text = snippet if "[cerebrium.deployment]" in snippet else f'{DEPLOYMENT}name = "app"\n{snippet}'
    (tmp_path / "cerebrium.toml").write_text(text, encoding="utf-8")
    return load(tmp_path)


D = DEPLOYMENT + 'name = "app"\n'
H = "[cerebrium.hardware]\n"
S = "[cerebrium.scaling]\n"
P = "[cerebrium.dependencies.paths]\n"

ROWS: list[tuple[str, str, str | None]] = [
    # --- deployment
    (D, "cerebrium.deployment.name", None),
    (DEPLOYMENT + "python_version = '3.12'\n", "cerebrium.deployment.name", r"name: is required \(add name"),
    (DEPLOYMENT + "name = 3\n", "cerebrium.deployment.name", r"must be a string, not an integer"),
    (DEPLOYMENT + 'name = ""\n', "cerebrium.deployment.name", r"must be a non-empty name"),
    (D + 'python_version = "3.10"\n', "cerebrium.deployment.python_version", None),
    (D + 'python_version = "3.11"\n', "cerebrium.deployment.python_version", None),
    (D + 'python_version = "3.9"\n', "cerebrium.deployment.python_version", r'must be one of "3.10", "3.11", "3.12"'),
    (D + "python_version = 3.11\n", "cerebrium.deployment.python_version", r"must be a string, not a float"),
    (D + "disable_auth = true\n", "cerebrium.deployment.disable_auth", None),
    (D + 'disable_auth = "true"\n', "cerebrium.deployment.disable_auth", r"must be a boolean .* not a string"),
    (D + 'include = ["main.py", "src/*"]\n', "cerebrium.deployment.include", None),
    (D + "include = [1]\n", "cerebrium.deployment.include", r"item 1 must be a string, not an integer"),
    (D + 'exclude = [".*", "*.ckpt"]\n', "cerebrium.deployment.exclude", None),
    (D + 'exclude = "node_modules"\n', "cerebrium.deployment.exclude", r"must be an array of strings, not a string"),
    (D + 'shell_commands = ["echo hi"]\n', "cerebrium.deployment.shell_commands", None),
    (D + "shell_commands = [true]\n", "cerebrium.deployment.shell_commands", r"item 1 must be a string"),
    (D + 'pre_build_commands = ["apt-get update"]\n', "cerebrium.deployment.pre_build_commands", None),
    (D + "pre_build_commands = {a = 1}\n", "cerebrium.deployment.pre_build_commands", r"must be an array .* a table"),
    (
        D + 'docker_base_image_url = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"\n',
        "cerebrium.deployment.docker_base_image_url",
        None,
    ),
    (D + 'docker_base_image_url = ""\n', "cerebrium.deployment.docker_base_image_url", r"must be an image reference"),
    (
        D + 'docker_base_image_url = "debian bookworm"\n',
        "cerebrium.deployment.docker_base_image_url",
        r"must be an image reference",
    ),
    (D + "use_uv = false\n", "cerebrium.deployment.use_uv", None),
    (D + "use_uv = 1\n", "cerebrium.deployment.use_uv", r"must be a boolean .* not an integer"),
    (D + "deployment_initialization_timeout = 60\n", "cerebrium.deployment.deployment_initialization_timeout", None),
    (D + "deployment_initialization_timeout = 830\n", "cerebrium.deployment.deployment_initialization_timeout", None),
    (
        D + "deployment_initialization_timeout = 59\n",
        "cerebrium.deployment.deployment_initialization_timeout",
        r"between 60 and 830, not 59",
    ),
    (
        D + "deployment_initialization_timeout = 831\n",
        "cerebrium.deployment.deployment_initialization_timeout",
        r"between 60 and 830, not 831",
    ),
    (
        D + "deployment_initialization_timeout = true\n",
        "cerebrium.deployment.deployment_initialization_timeout",
        r"must be an integer, not a boolean",
    ),
    # --- runtime.custom
    (RUNTIME, "cerebrium.runtime.custom.port", None),
    (
        '[cerebrium.runtime.custom]\nentrypoint = ["python", "main.py"]\n',
        "cerebrium.runtime.custom.port",
        r"is required",
    ),
    (
        '[cerebrium.runtime.custom]\nport = 0\nentrypoint = ["a"]\n',
        "cerebrium.runtime.custom.port",
        r"between 1 and 65535, not 0",
    ),
    (
        '[cerebrium.runtime.custom]\nport = 65536\nentrypoint = ["a"]\n',
        "cerebrium.runtime.custom.port",
        r"between 1 and 65535, not 65536",
    ),
    (
        '[cerebrium.runtime.custom]\nport = "8000"\nentrypoint = ["a"]\n',
        "cerebrium.runtime.custom.port",
        r"must be an integer, not a string",
    ),
    (
        "[cerebrium.runtime.custom]\nport = 8000\n",
        "cerebrium.runtime.custom.entrypoint",
        r"is required unless dockerfile_path is set",
    ),
    (
        '[cerebrium.runtime.custom]\nport = 8000\ndockerfile_path = "Dockerfile"\n',
        "cerebrium.runtime.custom.entrypoint",
        None,
    ),
    (
        '[cerebrium.runtime.custom]\nport = 8000\nentrypoint = "python main.py"\n',
        "cerebrium.runtime.custom.entrypoint",
        r"must be an array of strings",
    ),
    (
        "[cerebrium.runtime.custom]\nport = 8000\nentrypoint = []\n",
        "cerebrium.runtime.custom.entrypoint",
        r"must start with the program",
    ),
    (
        '[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["uvicorn", "m:app", "--port", "8000"]\n',
        "cerebrium.runtime.custom.entrypoint",
        None,
    ),
    (
        '[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["uvicorn", "m:app", "--port", "8001"]\n',
        "cerebrium.runtime.custom.entrypoint",
        r"port 8001 but port = 8000",
    ),
    (
        '[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["uvicorn", "m:app", "--port=9000"]\n',
        "cerebrium.runtime.custom.entrypoint",
        r"port 9000 but port = 8000",
    ),
    (
        '[cerebrium.runtime.custom]\nport = 5000\nentrypoint = ["gunicorn", "--bind", "0.0.0.0:5000", "a:b"]\n',
        "cerebrium.runtime.custom.entrypoint",
        None,
    ),
    (
        '[cerebrium.runtime.custom]\nport = 5000\nentrypoint = ["gunicorn", "-b", ":8000", "a:b"]\n',
        "cerebrium.runtime.custom.entrypoint",
        r"port 8000 but port = 5000",
    ),
    (
        '[cerebrium.runtime.custom]\nport = 5000\nentrypoint = ["sh", "-c", "flask run -p 5001"]\n',
        "cerebrium.runtime.custom.entrypoint",
        r"port 5001 but port = 5000",
    ),
    (
        '[cerebrium.runtime.custom]\nport = 8501\nentrypoint = ["streamlit", "run", "a.py", "--server.port=8501"]\n',
        "cerebrium.runtime.custom.entrypoint",
        None,
    ),
    (RUNTIME + 'healthcheck_endpoint = "/health"\n', "cerebrium.runtime.custom.healthcheck_endpoint", None),
    (RUNTIME + 'healthcheck_endpoint = ""\n', "cerebrium.runtime.custom.healthcheck_endpoint", None),
    (
        RUNTIME + 'healthcheck_endpoint = "health"\n',
        "cerebrium.runtime.custom.healthcheck_endpoint",
        r'starting with "/"',
    ),
    (RUNTIME + 'readycheck_endpoint = "/ready"\n', "cerebrium.runtime.custom.readycheck_endpoint", None),
    (
        RUNTIME + "readycheck_endpoint = 200\n",
        "cerebrium.runtime.custom.readycheck_endpoint",
        r"must be a string, not an integer",
    ),
    (RUNTIME + 'readycheck_endpoint = "ready"\n', "cerebrium.runtime.custom.readycheck_endpoint", r'starting with "/"'),
    (RUNTIME + 'dockerfile_path = "docker/Dockerfile"\n', "cerebrium.runtime.custom.dockerfile_path", None),
    (
        RUNTIME + 'dockerfile_path = "/etc/Dockerfile"\n',
        "cerebrium.runtime.custom.dockerfile_path",
        r"must be relative",
    ),
    (
        RUNTIME + 'dockerfile_path = "../Dockerfile"\n',
        "cerebrium.runtime.custom.dockerfile_path",
        r"must stay inside the project",
    ),
    # --- hardware
    (H + "cpu = 2\n", "cerebrium.hardware.cpu", None),
    (H + "cpu = 0.5\n", "cerebrium.hardware.cpu", None),
    (H + "cpu = 0\n", "cerebrium.hardware.cpu", r"greater than 0, not 0"),
    (H + "cpu = -1.5\n", "cerebrium.hardware.cpu", r"greater than 0, not -1.5"),
    (H + 'cpu = "2"\n', "cerebrium.hardware.cpu", r"must be a number, not a string"),
    (H + "memory = 16.0\n", "cerebrium.hardware.memory", None),
    (H + "memory = 0.0\n", "cerebrium.hardware.memory", r"greater than 0"),
    (H + "memory = false\n", "cerebrium.hardware.memory", r"must be a number, not a boolean"),
    (H + "memory = nan\n", "cerebrium.hardware.memory", r"must be a finite number"),
    (H + 'compute = "AMPERE_A10"\n', "cerebrium.hardware.compute", None),
    (H + 'compute = ["ADA_L4", "AMPERE_A10"]\n', "cerebrium.hardware.compute", None),
    (H + "compute = 10\n", "cerebrium.hardware.compute", r"must be a string or an array of strings"),
    (H + "compute = []\n", "cerebrium.hardware.compute", r"must not be an empty array"),
    (H + 'compute = "CPU"\ngpu_count = 0\n', "cerebrium.hardware.gpu_count", None),
    (H + 'compute = "AMPERE_A10"\ngpu_count = 2\n', "cerebrium.hardware.gpu_count", None),
    (H + "gpu_count = -1\n", "cerebrium.hardware.gpu_count", r"at least 0, not -1"),
    (H + "gpu_count = 1.5\n", "cerebrium.hardware.gpu_count", r"must be an integer, not a float"),
    (H + 'provider = "aws"\n', "cerebrium.hardware.provider", None),
    (H + "provider = 1\n", "cerebrium.hardware.provider", r"must be a string"),
    (H + 'region = "eu-west-2"\n', "cerebrium.hardware.region", None),
    (H + "region = []\n", "cerebrium.hardware.region", r"must be a string, not an array"),
    # --- scaling
    (S + "min_replicas = 1\n", "cerebrium.scaling.min_replicas", None),
    (S + "min_replicas = -1\n", "cerebrium.scaling.min_replicas", r"at least 0, not -1"),
    (
        S + "min_replicas = 3\n",
        "cerebrium.scaling.min_replicas",
        r"min_replicas \(3\) is greater than max_replicas \(2\)",
    ),
    (S + "max_replicas = 10\n", "cerebrium.scaling.max_replicas", None),
    (S + "max_replicas = 2.0\n", "cerebrium.scaling.max_replicas", r"must be an integer, not a float"),
    (S + "min_replicas = 0\nmax_replicas = 0\n", "cerebrium.scaling.max_replicas", None),
    (S + "replica_concurrency = 1\n", "cerebrium.scaling.replica_concurrency", None),
    (S + "replica_concurrency = 0\n", "cerebrium.scaling.replica_concurrency", r"at least 1, not 0"),
    (S + "response_grace_period = 900\n", "cerebrium.scaling.response_grace_period", None),
    (S + "response_grace_period = -5\n", "cerebrium.scaling.response_grace_period", r"at least 0"),
    (S + "cooldown = 60\n", "cerebrium.scaling.cooldown", None),
    (S + 'cooldown = "60"\n', "cerebrium.scaling.cooldown", r"must be an integer, not a string"),
    (S + 'scaling_metric = "requests_per_second"\n', "cerebrium.scaling.scaling_metric", None),
    (S + 'scaling_metric = "memory_utilization"\n', "cerebrium.scaling.scaling_metric", None),
    (S + 'scaling_metric = "gpu_utilization"\n', "cerebrium.scaling.scaling_metric", r"must be one of"),
    (S + "scaling_target = 80\n", "cerebrium.scaling.scaling_target", None),
    (S + "scaling_target = 0\n", "cerebrium.scaling.scaling_target", r"at least 1, not 0"),
    (S + "scaling_buffer = 3\n", "cerebrium.scaling.scaling_buffer", None),
    (S + 'scaling_metric = "requests_per_second"\nscaling_buffer = 3\n', "cerebrium.scaling.scaling_buffer", None),
    (
        S + 'scaling_metric = "cpu_utilization"\nscaling_buffer = 3\n',
        "cerebrium.scaling.scaling_buffer",
        r"only allowed with scaling_metric",
    ),
    (S + "scaling_buffer = -1\n", "cerebrium.scaling.scaling_buffer", r"at least 0"),
    (S + "evaluation_interval = 6\n", "cerebrium.scaling.evaluation_interval", None),
    (S + "evaluation_interval = 300\n", "cerebrium.scaling.evaluation_interval", None),
    (S + "evaluation_interval = 5\n", "cerebrium.scaling.evaluation_interval", r"between 6 and 300, not 5"),
    (S + "evaluation_interval = 301\n", "cerebrium.scaling.evaluation_interval", r"between 6 and 300, not 301"),
    (S + "evaluation_interval_seconds = 60\n", "cerebrium.scaling.evaluation_interval_seconds", None),
    (S + "evaluation_interval_seconds = 1\n", "cerebrium.scaling.evaluation_interval_seconds", r"between 6 and 300"),
    (
        S + "evaluation_interval = 60\nevaluation_interval_seconds = 30\n",
        "cerebrium.scaling.evaluation_interval_seconds",
        r"disagrees with evaluation_interval \(30 vs 60\)",
    ),
    (S + 'load_balancing = "min-connections"\n', "cerebrium.scaling.load_balancing", None),
    (S + 'load_balancing = ""\n', "cerebrium.scaling.load_balancing", None),
    (S + 'load_balancing = "least-conn"\n', "cerebrium.scaling.load_balancing", r"must be one of"),
    (S + 'load_balancing_algorithm = "random-choice-2"\n', "cerebrium.scaling.load_balancing_algorithm", None),
    (
        S + 'load_balancing_algorithm = "round_robin"\n',
        "cerebrium.scaling.load_balancing_algorithm",
        r'did you mean "round-robin"',
    ),
    (S + "roll_out_duration_seconds = 600\n", "cerebrium.scaling.roll_out_duration_seconds", None),
    (
        S + "roll_out_duration_seconds = 601\n",
        "cerebrium.scaling.roll_out_duration_seconds",
        r"between 0 and 600, not 601",
    ),
    (
        S + "roll_out_duration_seconds = -1\n",
        "cerebrium.scaling.roll_out_duration_seconds",
        r"between 0 and 600, not -1",
    ),
    # --- dependencies
    (
        '[cerebrium.dependencies.pip]\ntorch = "==2.0.0"\n"pkg[a, b]" = ">=1"\n',
        "cerebrium.dependencies.pip.torch",
        None,
    ),
    (
        "[cerebrium.dependencies.pip]\ntorch = 2.0\n",
        "cerebrium.dependencies.pip.torch",
        r"version must be a string, not a float",
    ),
    (
        '[cerebrium.dependencies]\npip = ["torch"]\n',
        "cerebrium.dependencies.pip",
        r"must be a table of name = version strings",
    ),
    ('[cerebrium.dependencies.apt]\nffmpeg = "latest"\n', "cerebrium.dependencies.apt.ffmpeg", None),
    (
        "[cerebrium.dependencies.apt]\nffmpeg = true\n",
        "cerebrium.dependencies.apt.ffmpeg",
        r"version must be a string, not a boolean",
    ),
    ('[cerebrium.dependencies.conda]\ncuda = ">=11.7"\n', "cerebrium.dependencies.conda.cuda", None),
    (
        "[cerebrium.dependencies.conda]\ncuda = {version = '11'}\n",
        "cerebrium.dependencies.conda.cuda",
        r"version must be a string, not a table",
    ),
    ('[cerebrium.dependencies]\nconda = "environment.yml"\n', "cerebrium.dependencies.conda", r"must be a table"),
    (P + 'pip = "requirements.txt"\n', "cerebrium.dependencies.paths.pip", None),
    (P + 'pip = "/abs/requirements.txt"\n', "cerebrium.dependencies.paths.pip", r"must be relative"),
    (P + 'apt = "deps/pkglist.txt"\n', "cerebrium.dependencies.paths.apt", None),
    (P + 'apt = "../../pkglist.txt"\n', "cerebrium.dependencies.paths.apt", r"must stay inside the project"),
    (P + 'conda = "conda_pkglist.txt"\n', "cerebrium.dependencies.paths.conda", None),
    (P + "conda = 1\n", "cerebrium.dependencies.paths.conda", r"must be a string, not an integer"),
    (P + 'conda = ""\n', "cerebrium.dependencies.paths.conda", r"must not be empty"),
]


@pytest.mark.parametrize(
    ("snippet", "key_path", "regex"),
    ROWS,
    ids=[f"{i:03d}-{r[1].removeprefix('cerebrium.')}-{'ok' if r[2] is None else 'bad'}" for i, r in enumerate(ROWS)],
)
def test_option(tmp_path: Path, snippet: str, key_path: str, regex: str | None) -> None:
    result = load_snippet(tmp_path, snippet)
    errors = [d for d in result.errors if d.key_path == key_path]
    if regex is None:
        assert result.ok, [d.format() for d in result.errors]
        assert not [d for d in result.diagnostics if d.key_path == key_path]
    else:
        assert not result.ok
        assert result.config is None
        assert any(re.search(regex, d.format()) for d in errors), [d.format() for d in result.diagnostics]
        line = next(d.line for d in errors if re.search(regex, d.format()))
        assert line is not None


def test_every_option_has_a_valid_and_an_invalid_row() -> None:
    from builder.config.spec import SECTIONS

    covered_ok = {key for _, key, regex in ROWS if regex is None}
    covered_bad = {key for _, key, regex in ROWS if regex is not None}
    for section in SECTIONS.values():
        for option in section.options.values():
            path = f"{section.path}.{option.name}"
            assert path in covered_ok, f"no valid row for {path}"
            assert path in covered_bad, f"no invalid row for {path}"
