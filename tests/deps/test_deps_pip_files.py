"""Requirements files: syntax, includes, options, URLs, local paths and unsafe input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.deps.paths import MAX_FILE_BYTES, MAX_LINE_BYTES
from builder.deps.pip import logical_lines, pip_set_from_file
from builder.errors import DependencyError

SHA = "sha256:" + "a" * 64
SHA2 = "sha256:" + "b" * 64


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def lines_of(root: Path, rel: str = "requirements.txt") -> list[str]:
    return [r.text for r in pip_set_from_file(rel, project_dir=root).requirements]


def test_comments_blank_lines_and_continuations(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": (
                "# a comment\n\n"
                "Torch==2.0.0   # trailing comment\n"
                "numpy \\\n  >=1.24 \\\n  ; python_version >= '3.10'\n"
                "   \n"
                "requests[Socks, security]\n"
            )
        },
    )
    assert lines_of(tmp_path) == [
        'numpy>=1.24 ; python_version >= "3.10"',
        "requests[security,socks]",
        "torch==2.0.0",
    ]


def test_logical_lines_report_the_first_physical_line() -> None:
    assert list(logical_lines("a\n# c\nb \\\n  c\n\nd")) == [(1, "a"), (3, "b c"), (6, "d")]


def test_markers_are_normalised(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "x ;python_version<'3.12' and sys_platform=='linux'\n"})
    assert lines_of(tmp_path) == ['x ; python_version < "3.12" and sys_platform == "linux"']


def test_same_name_with_different_markers_is_allowed(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "t==1 ; sys_platform == 'linux'\nt==2 ; sys_platform == 'darwin'\n"})
    assert len(lines_of(tmp_path)) == 2


def test_duplicate_requirement_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "Torch==1\ntorch==2\n"})
    with pytest.raises(DependencyError, match="listed twice"):
        pip_set_from_file("requirements.txt", project_dir=tmp_path)


def test_identical_duplicates_merge(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-r a.txt\n-r b.txt\n", "a.txt": "six\n", "b.txt": "Six\n"})
    assert lines_of(tmp_path) == ["six"]


def test_includes_are_relative_to_the_including_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": "-r reqs/base.txt\n--constraint=reqs/constraints.txt\nflask\n",
            "reqs/base.txt": "-rmore/extra.txt\nrequests\n",
            "reqs/more/extra.txt": "six\n",
            "reqs/constraints.txt": "urllib3<2\n",
        },
    )
    pip_set = pip_set_from_file("requirements.txt", project_dir=tmp_path)
    assert [r.line for r in pip_set.requirements] == ["flask", "requests", "six"]
    assert [r.line for r in pip_set.constraints] == ["urllib3<2"]
    assert pip_set.source == "requirements.txt"


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        ({"requirements.txt": "-r requirements.txt\n"}, "requirements.txt -> requirements.txt"),
        ({"requirements.txt": "-r a.txt\n", "a.txt": "-r b.txt\n", "b.txt": "-c a.txt\n"}, "a.txt -> b.txt -> a.txt"),
        (
            {"requirements.txt": "-r sub/a.txt\n", "sub/a.txt": "-r ../requirements.txt\n"},
            "requirements.txt -> sub/a.txt -> requirements.txt",
        ),
    ],
)
def test_include_cycles_are_detected(tmp_path: Path, files: dict[str, str], cycle: str) -> None:
    write(tmp_path, files)
    with pytest.raises(DependencyError, match="include cycle") as info:
        pip_set_from_file("requirements.txt", project_dir=tmp_path)
    assert cycle in info.value.message
    assert info.value.line == 1


def test_diamond_includes_are_not_a_cycle(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"requirements.txt": "-r a.txt\n-r b.txt\n", "a.txt": "-r c.txt\n", "b.txt": "-r c.txt\n", "c.txt": "six\n"},
    )
    assert lines_of(tmp_path) == ["six"]


def test_index_options(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": (
                "--index-url https://pypi.example/simple\n"
                "--extra-index-url=https://b.example/simple\n"
                "--extra-index-url https://a.example/simple\n"
                "-f ./wheels\n--find-links https://download.pytorch.org/whl/torch_stable.html\n"
                "--no-index\nsix\n"
            ),
            "wheels/.keep": "",
        },
    )
    pip_set = pip_set_from_file("requirements.txt", project_dir=tmp_path)
    assert pip_set.index_url == "https://pypi.example/simple"
    assert pip_set.extra_index_urls == ("https://a.example/simple", "https://b.example/simple")
    assert pip_set.find_links == ("./wheels", "https://download.pytorch.org/whl/torch_stable.html")
    assert pip_set.no_index
    assert pip_set.requirements_txt().splitlines()[:2] == ["--no-index", "--index-url https://pypi.example/simple"]


def test_hashes(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": f"six==1.16.0 \\\n  --hash={SHA2} \\\n  --hash {SHA}\n"})
    req = pip_set_from_file("requirements.txt", project_dir=tmp_path).requirements[0]
    assert req.hashes == (SHA, SHA2)
    assert req.text == f"six==1.16.0 --hash={SHA} --hash={SHA2}"


@pytest.mark.parametrize(
    ("text", "line", "name", "url"),
    [
        (
            "pkg @ https://files.example/pkg-1.0-py3-none-any.whl",
            "pkg @ https://files.example/pkg-1.0-py3-none-any.whl",
            "pkg",
            "https://files.example/pkg-1.0-py3-none-any.whl",
        ),
        (
            "https://files.example/My_Pkg-1.0-py3-none-any.whl",
            "my-pkg @ https://files.example/My_Pkg-1.0-py3-none-any.whl",
            "my-pkg",
            "https://files.example/My_Pkg-1.0-py3-none-any.whl",
        ),
        (
            "git+https://github.com/org/repo@v1.2#egg=Repo",
            "repo @ git+https://github.com/org/repo@v1.2",
            "repo",
            "git+https://github.com/org/repo@v1.2",
        ),
        (
            "repo @ git+https://github.com/org/repo@abc123",
            "repo @ git+https://github.com/org/repo@abc123",
            "repo",
            "git+https://github.com/org/repo@abc123",
        ),
        (
            "https://files.example/archive.tar.gz",
            "https://files.example/archive.tar.gz",
            "",
            "https://files.example/archive.tar.gz",
        ),
    ],
)
def test_url_and_vcs_requirements(tmp_path: Path, text: str, line: str, name: str, url: str) -> None:
    write(tmp_path, {"requirements.txt": text + "\n"})
    req = pip_set_from_file("requirements.txt", project_dir=tmp_path).requirements[0]
    assert (req.line, req.name, req.url) == (line, name, url)


def test_editable_vcs(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-e git+https://github.com/org/repo#egg=repo\n"})
    req = pip_set_from_file("requirements.txt", project_dir=tmp_path).requirements[0]
    assert req.editable and req.name == "repo" and req.text == "-e git+https://github.com/org/repo#egg=repo"


def test_local_paths_and_editables_are_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": "-e ./libs/core\n./libs/extra[Fast]\n-r sub/more.txt\n",
            "sub/more.txt": "../libs/third\n",
            "libs/core/pyproject.toml": "",
            "libs/extra/pyproject.toml": "",
            "libs/third/pyproject.toml": "",
        },
    )
    pip_set = pip_set_from_file("requirements.txt", project_dir=tmp_path)
    assert pip_set.local_paths == ("libs/core", "libs/extra", "libs/third")
    texts = sorted(r.text for r in pip_set.requirements)
    assert texts == ["-e ./libs/core", "./libs/extra[fast]", "./libs/third"]


def test_project_root_as_local_path(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-e .\n"})
    assert pip_set_from_file("requirements.txt", project_dir=tmp_path).local_paths == (".",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x; rm -rf /\n", "invalid requirement"),
        ("six==1.0; rm -rf /\n", "invalid requirement"),
        ("six && reboot\n", "invalid requirement"),
        ("six | tee x\n", "invalid requirement"),
        ("$(reboot)\n", "invalid requirement"),
        ("`reboot`\n", "invalid requirement"),
        ("-r $(reboot)\n", "contains"),
        ("-r `id`.txt\n", "contains"),
        ("--index-url https://x.org/simple;reboot\n", "not an acceptable URL"),
        ("--index-url https://${TOKEN}@x.org/simple\n", "not an acceptable URL"),
        ("--index-url ftp://x.org/simple\n", "not an acceptable URL"),
        ("--extra-index-url 'https://x.org'\n", "not an acceptable URL"),
        ("pkg @ https://x.org/p.whl;id\n", "invalid requirement|not an acceptable URL"),
        ("--index-url https://a.org/simple\n--index-url https://b.org/simple\n", "second --index-url"),
        ("-U\n", "cannot be used in a requirements file"),
        ("--frobnicate\n", "unsupported requirements-file option"),
        ('--only-binary "x"\n', "invalid value"),
        ("six --install-option=--prefix=/x\n", "unsupported per-requirement option"),
        ("six --hash=md5:abcd\n", "invalid hash"),
        ("-e six\n", "-e needs a local path or VCS URL"),
        ("-e git+https://github.com/o/r\n", "needs #egg"),
        ("pkg @ file:///etc/pkg\n", "file: URL"),
        ("~/pkg\n", "uses ~"),
        ("./missing\n", "does not exist"),
        ("../outside\n", "leaves the project"),
        ("/abs/pkg\n", "absolute"),
        ("-r\n", "needs exactly one value"),
        ("six\x1b[31m\n", "contains"),
    ],
)
def test_bad_lines_are_rejected_with_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, {"requirements.txt": "# header\n" + text})
    with pytest.raises(DependencyError, match=message) as info:
        pip_set_from_file("requirements.txt", project_dir=tmp_path)
    assert info.value.file == "requirements.txt"
    assert info.value.line is not None and info.value.line >= 2
    assert info.value.key_path == "cerebrium.dependencies.paths.pip"


# ---------------------------------------------------------------- paths and limits


@pytest.mark.parametrize("rel", ["../../etc/passwd", "../outside.txt", "sub/../../outside.txt"])
def test_paths_file_cannot_leave_the_project(tmp_path: Path, rel: str) -> None:
    project = tmp_path / "a" / "b"
    project.mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("six\n")
    (tmp_path / "a" / "outside.txt").write_text("six\n")
    with pytest.raises(DependencyError, match="leaves the project"):
        pip_set_from_file(rel, project_dir=project)


def test_absolute_paths_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("six\n")
    with pytest.raises(DependencyError, match="absolute"):
        pip_set_from_file(str(tmp_path / "r.txt"), project_dir=tmp_path)


def test_symlink_escaping_the_project_is_rejected(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (tmp_path / "secret.txt").write_text("six\n")
    os.symlink(tmp_path / "secret.txt", project / "requirements.txt")
    with pytest.raises(DependencyError, match="leaves the project"):
        pip_set_from_file("requirements.txt", project_dir=project)


def test_symlinked_directory_escape_in_include_is_rejected(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (tmp_path / "outer").mkdir()
    (tmp_path / "outer" / "x.txt").write_text("six\n")
    os.symlink(tmp_path / "outer", project / "link")
    (project / "requirements.txt").write_text("-r link/x.txt\n")
    with pytest.raises(DependencyError, match="leaves the project") as info:
        pip_set_from_file("requirements.txt", project_dir=project)
    assert info.value.line == 1


def test_symlink_inside_the_project_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("six\n")
    os.symlink(tmp_path / "real.txt", tmp_path / "requirements.txt")
    assert lines_of(tmp_path) == ["six"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DependencyError, match="does not exist") as info:
        pip_set_from_file("requirements.txt", project_dir=tmp_path)
    assert info.value.key_path == "cerebrium.dependencies.paths.pip"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").mkdir()
    with pytest.raises(DependencyError, match="not a regular file"):
        pip_set_from_file("requirements.txt", project_dir=tmp_path)


def test_file_over_5_mib_is_rejected_unread(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"# x\n" * (MAX_FILE_BYTES // 4 + 1))
    with pytest.raises(DependencyError, match="5 MiB"):
        pip_set_from_file("requirements.txt", project_dir=tmp_path)


def test_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    body = b"six\n"
    filler = (b"#" * 1023 + b"\n") * ((MAX_FILE_BYTES - len(body)) // 1024)
    data = body + filler
    data += b"#" * (MAX_FILE_BYTES - len(data))
    assert len(data) == MAX_FILE_BYTES
    (tmp_path / "requirements.txt").write_bytes(data)
    assert lines_of(tmp_path) == ["six"]


def test_line_over_64_kib_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"six\n#" + b"x" * MAX_LINE_BYTES + b"\n")
    with pytest.raises(DependencyError, match="64 KiB") as info:
        pip_set_from_file("requirements.txt", project_dir=tmp_path)
    assert info.value.line == 2


def test_binary_and_non_utf8_files(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"six\n\x00\x01")
    with pytest.raises(DependencyError, match="NUL"):
        pip_set_from_file("requirements.txt", project_dir=tmp_path)
    (tmp_path / "requirements.txt").write_bytes(b"six\n\xff\xfe\n")
    with pytest.raises(DependencyError, match="UTF-8"):
        pip_set_from_file("requirements.txt", project_dir=tmp_path)


def test_crlf_and_bom_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"\xef\xbb\xbfsix\r\nnumpy==1.0\r\n")
    assert lines_of(tmp_path) == ["numpy==1.0", "six"]
