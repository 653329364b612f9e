"""Likely secrets selected by the files step are named in a warning (issue 20, finding 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.config import load_config
from builder.plan import make_plan
from builder.plan.secrets import likely_secrets

PROJECT_FILES = {
    "main.py": "print('hi')\n",
    ".env": "OPENAI_API_KEY=sk-live\n",
    ".env.example": "OPENAI_API_KEY=\n",
    "certs/server.key": "-----BEGIN PRIVATE KEY-----\n",
    "deploy/id_ed25519": "key\n",
    "deploy/id_ed25519.pub": "ssh-ed25519 AAAA\n",
    "home/.aws/credentials": "[default]\n",
    "home/.netrc": "machine x login y password z\n",
}


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        (".env", ".env*"),
        (".env.production", ".env*"),
        ("src/.envrc", ".env*"),
        ("tls/cert.pem", "*.pem"),
        ("a/b/private.key", "*.key"),
        ("bundle.p12", "*.p12"),
        ("id_rsa", "id_rsa*"),
        ("keys/id_ecdsa_ci", "id_ecdsa*"),
        (".git-credentials", ".git-credentials"),
        ("x/.netrc", ".netrc"),
        (".pypirc", ".pypirc"),
        (".aws/config", ".aws"),
        ("home/.ssh/known_hosts", ".ssh"),
        (".docker/config.json", ".docker"),
        ("app.py", None),
        (".env.example", None),
        ("id_rsa.pub", None),
        ("keyboard.py", None),
        ("monkey", None),
        ("docs/pem.md", None),
        (".key", None),
        ("environment.yml", None),
        ("aws/notes.txt", None),
    ],
)
def test_likely_secrets(path: str, rule: str | None) -> None:
    assert likely_secrets([path]) == ([(path, rule)] if rule else [])


def _project(tmp_path: Path, exclude: str | None) -> Path:
    lines = ["[cerebrium.deployment]", 'name = "leaky"', 'include = ["*"]']
    if exclude is not None:
        lines.append(f"exclude = {exclude}")
    (tmp_path / "cerebrium.toml").write_text("\n".join(lines) + "\n")
    for rel, text in PROJECT_FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_an_exclude_without_dotfiles_warns_naming_the_files_and_patterns(tmp_path: Path) -> None:
    plan = make_plan(load_config(_project(tmp_path, '["*.log"]')))
    notes = [n for n in plan.notes if n.key_path == "cerebrium.deployment.exclude"]
    assert len(notes) == 1
    note = notes[0]
    assert note.level == "warning" and note.line == 4
    assert "ships 5 files that look like secrets" in note.message
    for shipped in (".env", "certs/server.key", "deploy/id_ed25519", "home/.aws/credentials", "home/.netrc"):
        assert shipped in note.message
    assert ".env.example" not in note.message and "id_ed25519.pub" not in note.message
    for pattern in ('".env*"', '"*.key"', '"id_ed25519*"', '".aws"', '".netrc"'):
        assert pattern in (note.hint or "")
    # The suggested excludes do drop them all, and then nothing is said.
    patterns = ["*.log", ".env*", "*.key", "id_ed25519*", ".aws", ".netrc"]
    quiet = make_plan(load_config(_project(tmp_path, json.dumps(patterns))))
    assert not [n for n in quiet.notes if n.key_path == "cerebrium.deployment.exclude"]
    assert "main.py" in {e.path for e in quiet.steps[-2].inputs.manifest.entries}  # files step still ships code


def test_the_default_exclude_ships_no_dotfile_secrets_but_still_names_keys(tmp_path: Path) -> None:
    plan = make_plan(load_config(_project(tmp_path, None)))
    (note,) = [n for n in plan.notes if n.key_path == "cerebrium.deployment.exclude"]
    assert "certs/server.key" in note.message and "deploy/id_ed25519" in note.message
    assert ".env" not in note.message.replace(".env.example", "")


def test_plan_shows_the_warning(tmp_path: Path) -> None:
    project = _project(tmp_path, "[]")
    env = {**os.environ, "BUILDER_SERVER": "off", "BUILDER_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "builder", "plan", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if "look like secrets" in ln]
    assert "cerebrium.toml:4" in line and "cerebrium.deployment.exclude" in line and ".env" in line


def test_validate_shows_the_warning_without_failing(tmp_path: Path) -> None:
    project = _project(tmp_path, '["*.log"]')
    env = {**os.environ, "BUILDER_SERVER": "off"}
    done = subprocess.run(
        [sys.executable, "-m", "builder", "validate", "--format", "json", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["valid"] is True
    (warning,) = [w for w in report["warnings"] if w["path"] == "cerebrium.deployment.exclude"]
    assert warning["line"] == 4 and "home/.netrc" in warning["message"] and '".env*"' in warning["message"]


@settings(max_examples=300)
@given(
    st.lists(
        st.lists(
            st.sampled_from(
                [
                    ".env",
                    ".envrc",
                    "a.pem",
                    ".pem",
                    "k.key",
                    "id_rsa",
                    "id_rsa.pub",
                    "x.p12",
                    ".netrc",
                    "_netrc",
                    ".aws",
                    ".ssh",
                    "gcloud",
                    "credentials",
                    "main.py",
                    "a.txt",
                    "id_ed25519",
                    ".npmrc",
                    "env",
                    "pem",
                ]
            ),
            min_size=1,
            max_size=4,
        ).map("/".join),
        max_size=20,
    )
)
def test_the_fast_scan_finds_what_the_rules_find(paths: list[str]) -> None:
    """The C-level prefilter never drops a path the rules match (reference: the rules on every path)."""
    from builder.plan import secrets

    expected = []
    for path in paths:
        parts = path.split("/")
        directory = next((p for p in parts[:-1] if p in secrets._DIRS), None)
        rule = directory if directory is not None else secrets._rule_for_name(parts[-1])
        if rule is not None:
            expected.append((path, rule))
    assert likely_secrets(paths) == expected
