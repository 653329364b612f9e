"""The single error funnel: exception class → exit code and hint.

Exit codes: 0 ok, 1 build failed, 2 invalid input (config, dependencies,
usage), 3 ``--fail-on-miss`` found a miss, 4 engine unreachable, 5 verify
failed, 6 registry refused the credentials or needs some, 7 registry unreachable,
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable

from builder import errors as e
from builder.cli import output

EXIT_OK = 0
EXIT_BUILD_FAILED = 1
EXIT_INVALID = 2
EXIT_MISS = 3
EXIT_ENGINE_UNAVAILABLE = 4
EXIT_VERIFY_FAILED = 5
EXIT_REGISTRY_AUTH = 6
EXIT_REGISTRY_UNAVAILABLE = 7
EXIT_INTERRUPTED = 130

# Most specific first.
_EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (e.ConfigError, EXIT_INVALID),
    (e.DependencyError, EXIT_INVALID),
    (e.EngineUnavailable, EXIT_ENGINE_UNAVAILABLE),
    (e.EngineUnsupported, EXIT_BUILD_FAILED),
    (e.SolveFailed, EXIT_BUILD_FAILED),
    (e.EngineError, EXIT_BUILD_FAILED),
    (e.VerifyFailed, EXIT_VERIFY_FAILED),
    (e.RegistryAuthError, EXIT_REGISTRY_AUTH),
    (e.RegistryUnavailable, EXIT_REGISTRY_UNAVAILABLE),
    (e.PlanError, EXIT_INVALID),
    (e.CacheError, EXIT_BUILD_FAILED),
    (e.BuilderError, EXIT_BUILD_FAILED),
)


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an exception class."""
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_BUILD_FAILED


def run_guarded(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, *, debug: bool) -> int:
    """Run a command; turn every exception into a message and an exit code."""
    try:
        return func(args)
    except KeyboardInterrupt:
        output.error("interrupted")
        return EXIT_INTERRUPTED
    except e.BuilderError as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        output.report_error(exc)
        return exit_code_for(exc)
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the last line of defence: never a bare traceback
        if debug:
            traceback.print_exc(file=sys.stderr)
        output.error(f"internal error: {type(exc).__name__}: {exc}")
        output.error("this is a bug in builder; rerun with --debug for the traceback and report it")
        return EXIT_BUILD_FAILED
