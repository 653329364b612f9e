"""apt and conda sets: inline tables and list files, syntax validation, injection."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.deps.apt import apt_set_from_file, apt_set_from_inline
from builder.deps.conda import DEFAULT_CHANNELS, conda_set_from_file, conda_set_from_inline
from builder.errors import DependencyError

# ------------------------------------------------------------------------- apt


@pytest.mark.parametrize(
    ("name", "version", "arg"),
    [
        ("ffmpeg", "latest", "ffmpeg"),
        ("ffmpeg", "", "ffmpeg"),
        ("ffmpeg", "*", "ffmpeg"),
        ("libopenblas-base", "latest", "libopenblas-base"),
        ("g++", "latest", "g++"),
        ("libstdc++6", "12.2.0-14", "libstdc++6=12.2.0-14"),
        ("ffmpeg", "7:5.1.4-0+deb12u1", "ffmpeg=7:5.1.4-0+deb12u1"),
        ("curl", "7.88.1-10+deb12u5", "curl=7.88.1-10+deb12u5"),
        ("libc6", "2.36~rc1", "libc6=2.36~rc1"),
        ("libc6:amd64", "latest", "libc6:amd64"),
    ],
)
def test_apt_inline_forms(name: str, version: str, arg: str) -> None:
    assert apt_set_from_inline(((name, version),)).args() == (arg,)


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("FFmpeg", "latest", "not a valid Debian package name"),
        ("f", "latest", "not a valid Debian package name"),
        ("-rf", "latest", "not a valid Debian package name"),
        ("x; rm -rf /", "latest", "not a valid Debian package name"),
        ("curl", "x; rm -rf /", "not a valid Debian version"),
        ("curl", ">=7.0", "not a valid Debian version"),
        ("curl", "$(id)", "not a valid Debian version"),
        ("curl", "1.0 && reboot", "not a valid Debian version"),
        ("curl\nwget", "latest", "newline"),
        ("curl", "1.0\x00", "NUL"),
    ],
)
def test_apt_inline_rejects(name: str, version: str, message: str) -> None:
    with pytest.raises(DependencyError, match=message) as info:
        apt_set_from_inline(((name, version),))
    assert (info.value.key_path or "").startswith("cerebrium.dependencies.apt")


def test_apt_pkglist_file(tmp_path: Path) -> None:
    (tmp_path / "pkglist.txt").write_text("# system packages\nffmpeg\n\ncurl=7.88.1-10  # pinned\ngit wget\n")
    apt_set = apt_set_from_file("pkglist.txt", project_dir=tmp_path)
    assert apt_set.args() == ("curl=7.88.1-10", "ffmpeg", "git", "wget")
    assert apt_set.source == "pkglist.txt"


@pytest.mark.parametrize(
    ("text", "line"), [("ffmpeg\nbad;name\n", 2), ("a1\n\n\n`id`\n", 4), ("ffmpeg\nffmpeg=1.0\n", 2)]
)
def test_apt_pkglist_errors_name_the_line(tmp_path: Path, text: str, line: int) -> None:
    (tmp_path / "pkglist.txt").write_text(text)
    with pytest.raises(DependencyError) as info:
        apt_set_from_file("pkglist.txt", project_dir=tmp_path)
    assert (info.value.file, info.value.line) == ("pkglist.txt", line)


def test_apt_duplicate_inline() -> None:
    with pytest.raises(DependencyError, match="listed twice"):
        apt_set_from_inline((("curl", "latest"), ("curl ", "1.0")))


# ----------------------------------------------------------------------- conda


@pytest.mark.parametrize(
    ("name", "version", "spec", "channel"),
    [
        ("cuda", ">=11.7", "cuda >=11.7", ""),
        ("cudatoolkit", "11.7", "cudatoolkit ==11.7", ""),
        ("numpy", "latest", "numpy", ""),
        ("numpy", "", "numpy", ""),
        ("numpy", "*", "numpy", ""),
        ("NumPy", "1.26.*", "numpy 1.26.*", ""),
        ("numpy", ">=1.2,<2", "numpy >=1.2,<2", ""),
        ("numpy", "1.2|1.3", "numpy ==1.2|==1.3", ""),
        ("conda-forge::numpy", "latest", "conda-forge::numpy", "conda-forge"),
        ("pytorch::pytorch", "2.1.0", "pytorch::pytorch ==2.1.0", "pytorch"),
    ],
)
def test_conda_inline_forms(name: str, version: str, spec: str, channel: str) -> None:
    conda_set = conda_set_from_inline(((name, version),))
    assert [(s.spec, s.channel) for s in conda_set.specs] == [(spec, channel)]
    assert conda_set.channels == ((channel,) if channel else DEFAULT_CHANNELS)


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("numpy", "x; rm -rf /", "contains"),
        ("numpy", ">=1 rm", "contains a space"),
        ("x; rm -rf /", "latest", "contains"),
        ("num`id`py", "latest", "contains"),
        ("numpy", "$(id)", "contains"),
        ("numpy", "1.0\n", "newline"),
        ("bad::chan::numpy", "latest", "invalid conda spec|not a valid conda channel"),
        ("numpy", ">=>1", "invalid conda spec"),
    ],
)
def test_conda_inline_rejects(name: str, version: str, message: str) -> None:
    with pytest.raises(DependencyError, match=message) as info:
        conda_set_from_inline(((name, version),))
    assert (info.value.key_path or "").startswith("cerebrium.dependencies.conda")


def test_conda_duplicates() -> None:
    with pytest.raises(DependencyError, match="listed twice"):
        conda_set_from_inline((("NumPy", "latest"), ("conda-forge::numpy", "1.0")))


def test_conda_file(tmp_path: Path) -> None:
    (tmp_path / "conda_pkglist.txt").write_text(
        "# platform: linux-64\n-c pytorch\n--channel conda-forge\n"
        "cudatoolkit=11.7\npytorch::pytorch >=2\nnumpy=1.24=py_0  # export format\n"
    )
    conda_set = conda_set_from_file("conda_pkglist.txt", project_dir=tmp_path)
    assert [s.spec for s in conda_set.specs] == ["cudatoolkit 11.7.*", "numpy ==1.24 py_0", "pytorch::pytorch >=2"]
    assert conda_set.channels == ("pytorch", "conda-forge")
    assert conda_set.source == "conda_pkglist.txt"


@pytest.mark.parametrize("text", ["numpy; rm -rf /\n", "-c $(id)\n", "-c 'x'\n", "numpy >=1 && id\n"])
def test_conda_file_rejects(tmp_path: Path, text: str) -> None:
    (tmp_path / "conda_pkglist.txt").write_text("numpy\n" + text)
    with pytest.raises(DependencyError) as info:
        conda_set_from_file("conda_pkglist.txt", project_dir=tmp_path)
    assert (info.value.file, info.value.line) == ("conda_pkglist.txt", 2)
