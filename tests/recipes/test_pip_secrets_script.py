"""``pip_secrets.sh``'s prelude, run with the host's /bin/sh: which variables the recognised secrets become."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.recipes.script_text import script_text

VARS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "NETRC")


def _prelude(secrets_dir: Path) -> str:
    text = script_text("pip_secrets.sh")
    body = script_text("pip.sh")
    assert text.endswith(body + "\n") or text.endswith(body), "the prelude runs before the whole pip.sh"
    prelude = text[: text.rindex(body)]
    return prelude.replace("/run/secrets/", f"{secrets_dir}/")


def _run(tmp_path: Path, installer: str, files: dict[str, str], env: dict[str, str] | None = None) -> dict[str, str]:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    for name, text in files.items():
        (secrets / name).write_text(text)
    script = (
        _prelude(secrets)
        + "for v in "
        + " ".join(VARS)
        + '; do eval "printf \'%s=%s\\n\' $v \\"\\${$v-<unset>}\\""; done\n'
    )
    done = subprocess.run(
        ["/bin/sh", "-c", script, "pip", installer, "/opt/venv"],
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


URL = "https://u:p@index.example/simple/"
EXTRA = "https://mirror.example/simple/"


@pytest.mark.parametrize(("installer", "prefix"), [("pip", "PIP"), ("uv", "UV")])
def test_index_secrets_become_the_installers_variables(tmp_path: Path, installer: str, prefix: str) -> None:
    seen = _run(
        tmp_path, installer, {"pip_index_url": f"  {URL}\n", "pip_extra_index_url": EXTRA, "netrc": "machine x"}
    )
    other = "UV" if prefix == "PIP" else "PIP"
    assert seen[f"{prefix}_INDEX_URL"] == URL and seen[f"{prefix}_EXTRA_INDEX_URL"] == EXTRA
    assert seen[f"{other}_INDEX_URL"] == seen[f"{other}_EXTRA_INDEX_URL"] == "<unset>"
    assert seen["NETRC"] == str(tmp_path / "secrets" / "netrc")


def test_absent_or_empty_secrets_set_nothing_and_builders_netrc_wins(tmp_path: Path) -> None:
    seen = _run(tmp_path, "uv", {"pip_index_url": ""})
    assert all(seen[v] == "<unset>" for v in VARS), seen
    kept = _run(tmp_path, "pip", {"netrc": "machine y"}, {"NETRC": "/root/.netrc"})
    assert kept["NETRC"] == "/root/.netrc"
