"""The one-line hints for common step failures, from output lines seen in real builds (pip, uv, gcc, apt)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.engines.failure_hints import hint_for, short_error

ROWS = [
    ("error: command 'x86_64-linux-gnu-gcc' failed: No such file or directory", "needs a C compiler"),
    ("unable to execute 'gcc': No such file or directory", "needs a C compiler"),
    ("/bin/sh: 1: cc: not found", "needs a C compiler"),
    ("error: linker `cc` not found", "needs a C compiler"),
    (
        "  src/portaudio.c:29:10: fatal error: portaudio.h: No such file or directory",
        "headers are missing (portaudio.h)",
    ),
    ("Exception: Can not find valid pkg-config name.", "a system library is missing"),
    ("Package cairo was not found in the pkg-config search path.", "a system library is missing (cairo)"),
    ("/usr/bin/ld: cannot find -lpq: No such file or directory", "a system library is missing (pq)"),
    (
        "ImportError: libGL.so.1: cannot open shared object file: No such file or directory",
        "a system library is missing (libGL.so.1)",
    ),
    ("Error: pg_config executable not found.", "a system library is missing"),
    (
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain",
        "TLS certificate verification failed",
    ),
    ("  Caused by: invalid peer certificate: UnknownIssuer", "--ca-bundle"),
    ("curl: (60) SSL certificate problem: unable to get local issuer certificate", "BUILDER_CA_BUNDLE"),
    ("ERROR: No matching distribution found for pywin32==306", "no release of pywin32==306 can be installed here"),
    (
        "  ╰─▶ Because pywin32==306 has no wheels with a matching platform tag (e.g., `manylinux_2_36_x86_64`)",
        "no release of pywin32==306 can be installed here",
    ),
]


@pytest.mark.parametrize(("line", "expected"), ROWS, ids=[r[1][:30] for r in ROWS])
def test_each_cause_gets_its_hint(line: str, expected: str) -> None:
    hint = hint_for("pip", ["Collecting x", line, "note: This error originates from a subprocess"])
    assert hint is not None and expected in hint


def test_tls_wins_over_the_no_distribution_it_causes() -> None:
    lines = ["WARNING: Retrying ... CERTIFICATE_VERIFY_FAILED ...", "ERROR: No matching distribution found for six"]
    assert "TLS" in (hint_for("pip", lines) or "")


def test_the_compiler_wins_over_the_files_a_compiler_would_read() -> None:
    lines = ["fatal error: Python.h: No such file or directory", "error: command 'gcc' failed: No such file"]
    assert "C compiler" in (hint_for("pip", lines) or "")


def test_an_unknown_failure_has_no_hint() -> None:
    assert hint_for("shell", ["ValueError: nope", "exit status 3"]) is None


@pytest.mark.parametrize(
    "error",
    [
        'process "/bin/sh -c set -eu\\ninstaller=\\"$1\\"" did not complete successfully: exit code: 1',
        'executor failed running [/bin/sh -c set -eu\ninstaller="$1"]: exit code: 1',
    ],
)
def test_short_error_drops_builders_script(error: str) -> None:
    assert short_error(error) == "the command did not complete successfully: exit code: 1"


@given(st.text())
def test_hints_and_short_errors_never_raise(text: str) -> None:
    hint_for("pip", text.splitlines())
    assert isinstance(short_error(text), str)
