"""Why a verification container did not start, in words (pure): the engine's error → :class:`VerifyFailed`.

Docker refuses to start a container whose entrypoint program is not in the image with an HTTP error
quoting the OCI runtime (``exec: "uvicorn": executable file not found in $PATH``).  That is the app's
problem, not the engine's: verification fails (exit 5) with the program's name and the fix.

>>> failure = start_failure("app:dev", EngineError('... exec: "uvicorn": executable file not found in $PATH: unknown'))
>>> failure.message
"app:dev: the container could not start: its entrypoint program 'uvicorn' is not in the image; the app printed nothing"
"""

from __future__ import annotations

import re

from builder.errors import BuilderError, EngineError, EngineUnavailable, VerifyFailed

_EXEC = re.compile(
    r'exec: "([^"]+)": (executable file not found in \$PATH|stat [^:]*: no such file or directory'
    r"|no such file or directory|permission denied|exec format error)"
)
_HINT_MISSING = (
    "install it (e.g. add it to [cerebrium.dependencies.pip]) or fix entrypoint in [cerebrium.runtime.custom]"
)


def start_failure(image: str, exc: EngineError) -> BuilderError:
    """The VerifyFailed for a container the engine would not start (``exc`` itself when the engine did not answer)."""
    if isinstance(exc, EngineUnavailable):
        return exc
    found = _EXEC.search(exc.message)
    if found is None:
        return VerifyFailed(
            f"{image}: the container could not start: {exc.message}; the app printed nothing",
            hint="check the image's entrypoint and the engine's message above",
        )
    program, why = found.groups()
    if why == "permission denied":
        reason = f"its entrypoint program {program!r} is not executable"
        hint = "make it executable (chmod +x) in the project, or run it through its interpreter in entrypoint"
    elif why == "exec format error":
        reason = f"its entrypoint program {program!r} is not a program for this platform (or lacks a #! line)"
        hint = "start a script with a #! line, or run it through its interpreter in entrypoint"
    else:
        reason = f"its entrypoint program {program!r} is not in the image"
        hint = _HINT_MISSING
    return VerifyFailed(f"{image}: the container could not start: {reason}; the app printed nothing", hint=hint)
