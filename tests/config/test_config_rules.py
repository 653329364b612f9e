"""Defaults, cross-option rules, unknown keys and older schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.config import Config, LoadResult, load
from builder.config.checks import entrypoint_ports
from builder.config.model import DEFAULT_BASE_IMAGE


def load_text(tmp_path: Path, text: str) -> LoadResult:
    (tmp_path / "cerebrium.toml").write_text(text, encoding="utf-8")
    return load(tmp_path)


def valid(tmp_path: Path, text: str) -> Config:
    result = load_text(tmp_path, text)
    assert result.config is not None, [d.format() for d in result.diagnostics]
    return result.config


def lines(result: LoadResult) -> list[str]:
    """Diagnostics without the file prefix: ``level line key: message (hint)``."""
    out = []
    for d in result.diagnostics:
        text = f"{d.key_path}: {d.message}" + (f" ({d.hint})" if d.hint else "")
        out.append(f"{d.level} {d.line} {text}")
    return out


NAME = '[cerebrium.deployment]\nname = "app"\n'


def test_defaults_of_the_reference(app_minimal: Path) -> None:
    config = load(app_minimal).config
    assert config is not None
    d = config.deployment
    assert (d.python_version, d.disable_auth, d.include, d.exclude) == ("3.12", False, ("*",), (".*",))
    assert (d.shell_commands, d.pre_build_commands, d.use_uv) == ((), (), False)
    assert (d.docker_base_image_url, d.deployment_initialization_timeout) == (DEFAULT_BASE_IMAGE, 600)
    assert config.runtime is None
    h = config.hardware
    assert (h.cpu, h.memory, h.compute, h.gpu_count, h.provider, h.region) == (
        None,
        None,
        ("CPU",),
        0,
        "aws",
        "us-east-1",
    )
    s = config.scaling
    assert (s.min_replicas, s.max_replicas, s.replica_concurrency, s.response_grace_period, s.cooldown) == (
        0,
        2,
        10,
        3600,
        1800,
    )
    assert (s.scaling_metric, s.scaling_target, s.scaling_buffer, s.evaluation_interval) == (
        "concurrency_utilization",
        100,
        None,
        30,
    )
    assert (s.load_balancing, s.roll_out_duration_seconds, s.effective_load_balancing) == ("", 0, "round-robin")
    assert config.dependencies.pip == config.dependencies.apt == config.dependencies.conda == ()


def test_complete_example(app_complete: Path) -> None:
    config = load(app_complete).config
    assert config is not None
    assert config.deployment.name == "llm-inference" and config.deployment.use_uv
    assert config.runtime is not None and config.runtime.port == 8000
    assert config.hardware.cpu == 4.0 and isinstance(config.hardware.cpu, float)
    assert config.hardware.compute == ("AMPERE_A10",) and config.hardware.gpu_count == 1
    assert config.dependencies.pip == (("torch", "latest"), ("transformers", "latest"), ("uvicorn", "latest"))
    assert config.source_map is not None and config.source_map.line_of("cerebrium.hardware.compute") == 22


@pytest.mark.parametrize(
    ("concurrency", "expected"), [(1, "first-available"), (3, "first-available"), (4, "round-robin")]
)
def test_effective_load_balancing(tmp_path: Path, concurrency: int, expected: str) -> None:
    config = valid(tmp_path, NAME + f"[cerebrium.scaling]\nreplica_concurrency = {concurrency}\n")
    assert config.scaling.effective_load_balancing == expected


def test_gpu_count_defaults_to_one_for_gpu_compute(tmp_path: Path) -> None:
    assert valid(tmp_path, NAME + '[cerebrium.hardware]\ncompute = "ADA_L4"\n').hardware.gpu_count == 1


def test_gpu_count_stays_zero_for_cpu(tmp_path: Path) -> None:
    assert valid(tmp_path, NAME + '[cerebrium.hardware]\ncompute = "CPU"\n').hardware.gpu_count == 0


def test_cpu_with_gpu_count_warns(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + '[cerebrium.hardware]\ncompute = "CPU"\ngpu_count = 1\n')
    assert result.ok
    assert lines(result) == [
        "warning 5 cerebrium.hardware.gpu_count: compute is CPU but gpu_count = 1; no GPU is attached "
        '(set compute to a GPU type (e.g. "AMPERE_A10") or gpu_count = 0)'
    ]


def test_unknown_compute_is_a_warning_with_suggestion(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + '[cerebrium.hardware]\ncompute = "A100"\n')
    assert result.ok and result.config is not None
    assert result.config.hardware.compute == ("A100",)
    assert lines(result) == [
        'warning 4 cerebrium.hardware.compute: unknown compute type "A100" (did you mean "AMPERE_A100"?)'
    ]


def test_older_gpu_key_is_an_alias_of_compute(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + '[cerebrium.hardware]\ngpu = "AMPERE_A10"\n')
    assert result.config is not None and result.config.hardware.compute == ("AMPERE_A10",)
    assert lines(result) == [
        "warning 4 cerebrium.hardware.gpu: is an older spelling of compute; read as compute (rename it compute)"
    ]


def test_alias_spellings_same_value_warn(tmp_path: Path) -> None:
    result = load_text(
        tmp_path, NAME + "[cerebrium.scaling]\nevaluation_interval = 60\nevaluation_interval_seconds = 60\n"
    )
    assert result.config is not None and result.config.scaling.evaluation_interval == 60
    assert lines(result) == [
        "warning 5 cerebrium.scaling.evaluation_interval_seconds: repeats evaluation_interval with the same value "
        "(remove one of evaluation_interval and evaluation_interval_seconds)"
    ]


def test_alias_spelling_alone_sets_the_option(tmp_path: Path) -> None:
    config = valid(tmp_path, NAME + '[cerebrium.scaling]\nload_balancing_algorithm = "min-connections"\n')
    assert config.scaling.load_balancing == "min-connections"


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + "python_versoin = '3.11'\n")
    assert result.ok
    assert lines(result) == [
        "warning 3 cerebrium.deployment.python_versoin: unknown key; ignored (did you mean python_version?)"
    ]


def test_key_in_the_wrong_section_names_its_home(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + "[cerebrium.hardware]\nuse_uv = true\n")
    assert lines(result) == [
        "warning 4 cerebrium.hardware.use_uv: is not an option of [cerebrium.hardware]; ignored "
        "(use_uv belongs in [cerebrium.deployment])"
    ]


def test_older_build_section(tmp_path: Path) -> None:
    text = '[cerebrium.build]\npredict_data = "{}"\nuse_uv = true\nlog_level = "INFO"\n' + NAME
    result = load_text(tmp_path, text)
    assert result.ok
    assert lines(result) == [
        "warning 1 cerebrium.build: section is from an older cerebrium CLI; builder ignores it",
        "warning 3 cerebrium.build.use_uv: is not read from [cerebrium.build]; ignored (use_uv belongs in [cerebrium.deployment])",
    ]


def test_older_keys_in_deployment_are_ignored_with_reason(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + "disable_predict = true\n")
    assert lines(result) == [
        "warning 3 cerebrium.deployment.disable_predict: is not used by builder; ignored "
        "(was used by the older CLI to skip the test prediction)"
    ]


def test_older_string_include_is_read_as_list(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + 'include = "[./*, main.py, cerebrium.toml]"\n')
    assert result.config is not None
    assert result.config.deployment.include == ("./*", "main.py", "cerebrium.toml")
    assert [d.level for d in result.diagnostics] == ["warning"]


def test_blank_shell_commands_are_dropped(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + 'shell_commands = [""]\npre_build_commands = ["  ", "echo hi"]\n')
    assert result.config is not None
    assert result.config.deployment.shell_commands == ()
    assert result.config.deployment.pre_build_commands == ("echo hi",)
    assert [d.key_path for d in result.warnings] == [
        "cerebrium.deployment.shell_commands",
        "cerebrium.deployment.pre_build_commands",
    ]


def test_cortex_runtime_is_the_default_runtime_and_top_level_tables_warn(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + "[cerebrium.runtime.cortex]\nx = 1\n[tool.ruff]\nline-length = 100\n")
    assert result.ok and result.config is not None and result.config.runtime is None
    assert result.config.default_runtime is not None and result.config.default_runtime.module == "main"
    assert [(d.line, d.key_path) for d in result.warnings] == [(4, "cerebrium.runtime.cortex.x"), (5, "tool")]


def test_cortex_entrypoint_names_the_served_module(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + '[cerebrium.runtime.cortex]\nentrypoint = "app.py"\n')
    assert result.ok and result.config is not None
    assert result.config.cortex.module == "app" and result.config.endpoints == ("/ready", "/health")
    bad = load_text(tmp_path, NAME + '[cerebrium.runtime.cortex]\nentrypoint = "src/app.py"\n')
    assert not bad.ok
    assert lines(bad) == [
        "error 4 cerebrium.runtime.cortex.entrypoint: must be the name of a .py file at the top of "
        'the project, not "src/app.py" (write entrypoint = "main.py")'
    ]


@pytest.mark.parametrize("name", ["deepgram", "rime"])
def test_partner_runtimes_exist_only_on_cerebrium(tmp_path: Path, name: str) -> None:
    result = load_text(tmp_path, NAME + f'[cerebrium.runtime.{name}]\nmodel = "x"\n')
    assert not result.ok and result.config is None
    assert lines(result) == [
        f"error 3 cerebrium.runtime.{name}: {name!r} is a partner runtime that exists only on "
        "Cerebrium: builder cannot build or run it (deploy it with the cerebrium CLI, or describe "
        "your own server in [cerebrium.runtime.custom])"
    ]


def test_misspelt_runtime_is_an_error_with_a_guess(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + "[cerebrium.runtime.costum]\nport = 8000\n")
    assert lines(result) == [
        "error 3 cerebrium.runtime.costum: 'costum' is a partner runtime that exists only on "
        "Cerebrium: builder cannot build or run it (did you mean [cerebrium.runtime.custom]?)"
    ]


def test_partner_service_section_is_an_error(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + '[cerebrium.partner.service]\nname = "deepgram"\nport = 8080\n')
    assert not result.ok
    assert lines(result) == [
        "error 3 cerebrium.partner: [cerebrium.partner] (deepgram) configures a partner service "
        "that exists only on Cerebrium: builder cannot build or run it "
        "(deploy it with the cerebrium CLI)"
    ]


def test_top_level_option_names_its_home(tmp_path: Path) -> None:
    result = load_text(tmp_path, 'name = "x"\n' + NAME)
    assert (
        lines(result)[0] == "warning 1 name: is outside [cerebrium.*]; ignored (name belongs in [cerebrium.deployment])"
    )


def test_unknown_cerebrium_section_did_you_mean(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + "[cerebrium.scalling]\nmin_replicas = 1\n")
    assert lines(result) == [
        "warning 3 cerebrium.scalling: unknown section; ignored (did you mean [cerebrium.scaling]?)"
    ]


def test_unknown_dependency_table(tmp_path: Path) -> None:
    result = load_text(tmp_path, NAME + '[cerebrium.dependencies.pip3]\nnumpy = "1"\n')
    assert lines(result) == [
        "warning 3 cerebrium.dependencies.pip3: unknown section; ignored (did you mean [cerebrium.dependencies.pip]?)"
    ]


def test_missing_cerebrium_table(tmp_path: Path) -> None:
    result = load_text(tmp_path, "[deployment]\nname = 'x'\n")
    assert not result.ok
    assert [d.key_path for d in result.errors] == ["cerebrium.deployment.name"]


@pytest.mark.parametrize("text", ["cerebrium = 1\n", "[cerebrium]\ndeployment = 'x'\n", "[cerebrium]\nruntime = []\n"])
def test_wrong_shapes_are_errors(tmp_path: Path, text: str) -> None:
    result = load_text(tmp_path, text)
    assert not result.ok
    assert any("must be a table" in d.message for d in result.errors)


def test_all_problems_in_one_pass_in_file_order(tmp_path: Path) -> None:
    text = (
        '[cerebrium.deployment]\nname = "app"\npython_version = "2.7"\nuse_uv = "yes"\n'
        "[cerebrium.scaling]\nmin_replicas = -1\nevaluation_interval = 1000\n"
        "[cerebrium.hardware]\ncpu = -2\n"
    )
    result = load_text(tmp_path, text)
    assert [(d.line, d.key_path) for d in result.errors] == [
        (3, "cerebrium.deployment.python_version"),
        (4, "cerebrium.deployment.use_uv"),
        (6, "cerebrium.scaling.min_replicas"),
        (7, "cerebrium.scaling.evaluation_interval"),
        (9, "cerebrium.hardware.cpu"),
    ]


def test_dependency_keys_kept_as_written_and_sorted(tmp_path: Path) -> None:
    text = NAME + '[cerebrium.dependencies.pip]\nzeta = "1"\n"pkg[a, b]" = "==1.0"\nAlpha = ">=2"\n'
    config = valid(tmp_path, text)
    assert config.dependencies.pip == (("Alpha", ">=2"), ("pkg[a, b]", "==1.0"), ("zeta", "1"))


def test_inline_table_dependencies_have_lines(tmp_path: Path) -> None:
    text = NAME + '[cerebrium.dependencies]\npip = { numpy = "1", torch = 2 }\n'
    result = load_text(tmp_path, text)
    assert lines(result) == [
        'error 4 cerebrium.dependencies.pip.torch: version must be a string, not an integer (write "==2", "latest" or ">=…")'
    ]


def test_dotted_keys_have_lines(tmp_path: Path) -> None:
    result = load_text(tmp_path, "[cerebrium]\ndeployment.name = 'x'\nscaling.cooldown = -1\n")
    assert [(d.line, d.key_path) for d in result.errors] == [(3, "cerebrium.scaling.cooldown")]


@pytest.mark.parametrize(
    ("argv", "ports"),
    [
        (["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"], (8000,)),
        (["uvicorn", "main:app", "--port=8001"], (8001,)),
        (["gunicorn", "--bind", "0.0.0.0:8002", "app:app"], (8002,)),
        (["gunicorn", "--bind=unix:/tmp/s", "app:app"], ()),
        (["gunicorn", "-b", ":8003"], (8003,)),
        (["gunicorn", "-b[::]:8004"], (8004,)),
        (["flask", "run", "-p", "8005"], (8005,)),
        (["sh", "-c", "uvicorn app:app --port 8006"], (8006,)),
        (["uvicorn", "app:app", "--port", "$PORT"], ()),
        (["python", "main.py"], ()),
        (["streamlit", "run", "app.py", "--server.port", "8501"], (8501,)),
    ],
)
def test_entrypoint_ports(argv: list[str], ports: tuple[int, ...]) -> None:
    assert entrypoint_ports(argv) == ports


@pytest.mark.parametrize(
    ("section", "model"),
    [
        ("cerebrium.deployment", "Deployment"),
        ("cerebrium.runtime.custom", "RuntimeCustom"),
        ("cerebrium.hardware", "Hardware"),
        ("cerebrium.scaling", "Scaling"),
        ("cerebrium.dependencies.paths", "DependencyPaths"),
    ],
)
def test_option_tables_match_the_model(section: str, model: str) -> None:
    """The spec tables (validator + schema) and the frozen model never drift apart."""
    import dataclasses

    from builder.config import model as model_module
    from builder.config.spec import SECTIONS

    cls = getattr(model_module, model)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    options = SECTIONS[section].options
    assert set(fields) == set(options)
    for name, option in options.items():
        default = fields[name].default
        if default is dataclasses.MISSING or option.default is None:
            continue
        expected = tuple(option.default) if isinstance(option.default, list) else option.default
        if name == "compute":
            expected = (option.default,)
        assert default == expected, name
