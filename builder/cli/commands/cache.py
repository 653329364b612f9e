"""``builder cache stats|ls|prune|clear``: inspect and trim the step cache.

Every subcommand takes ``--cache-dir`` (else ``BUILDER_CACHE_DIR``, else
``$XDG_CACHE_HOME/builder``, else ``~/.cache/builder``).  Sizes accept
``500MB``, ``1G``, ``1.5GiB``, ``4096`` (bytes; every unit is a power of
1024); ages accept ``7d``, ``12h``, ``1d12h``, ``30m``, ``90s``, ``2w``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from builder.cli import output
from builder.cli.errors import EXIT_OK
from builder.errors import CacheError, ConfigError

if TYPE_CHECKING:  # opened in _opened(): registering the command must stay cheap
    import cache

_SIZE_UNITS = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGE_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_size(text: str) -> int:
    """Bytes in ``text`` such as ``500MB``, ``1G``, ``1.5GiB`` or ``4096``; ValueError otherwise."""
    match = _SIZE_RE.match(text)
    if match is None:
        raise ValueError(f"invalid size {text!r}: use a number with an optional unit, e.g. 500MB or 1G")
    number, unit, suffix = match.groups()
    if suffix and suffix.lower() == "ib" and not unit:
        raise ValueError(f"invalid size {text!r}: 'iB' needs a unit letter, e.g. 500MiB")
    return int(float(number) * 1024 ** _SIZE_UNITS[unit.lower()])


def parse_age(text: str) -> float:
    """Seconds in ``text`` such as ``7d``, ``12h``, ``1d12h`` or ``90s``; ValueError otherwise."""
    compact = text.strip().lower()
    parts = _AGE_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"invalid age {text!r}: use a number and a unit s/m/h/d/w, e.g. 7d or 12h")
    return sum(float(n) * _AGE_UNITS[u] for n, u in parts)


def format_size(n: int) -> str:
    """``n`` bytes for humans: ``512 B``, ``1.5 KiB``, ``12.0 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - loop always returns


def format_time(epoch: float | None) -> str:
    """A UTC timestamp ``2026-11-27 19:00:00Z``, or ``-``."""
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def _argtype(parse: Callable[[str], object]) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    convert.__name__ = parse.__name__.removeprefix("parse_")
    return convert


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cache`` command and its subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a --cache-dir given before the subcommand (or globally) is not overwritten.
    common.add_argument(
        "--cache-dir",
        default=argparse.SUPPRESS,
        help="cache directory (default: BUILDER_CACHE_DIR, else $XDG_CACHE_HOME/builder, else ~/.cache/builder)",
    )
    common.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser = sub.add_parser(
        "cache",
        help="inspect and trim the step cache",
        description="Inspect and trim the step cache (built steps, plan history, file digests).",
    )
    parser.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    actions = parser.add_subparsers(dest="cache_command", metavar="ACTION", required=True)

    stats = actions.add_parser("stats", parents=[common], help="counts and sizes")
    stats.set_defaults(func=run_stats)

    ls = actions.add_parser("ls", parents=[common], help="list built steps, most recently used first")
    ls.add_argument("--app", default=None, help="only steps of this app")
    ls.set_defaults(func=run_ls)

    prune = actions.add_parser(
        "prune",
        parents=[common],
        help="drop least recently used entries",
        description="Drop entries unused for --older-than, then the least recently used "
        "ones until the cache is within --max-size.",
    )
    prune.add_argument("--max-size", type=_argtype(parse_size), default=None, help="size bound, e.g. 500MB or 1G")
    prune.add_argument("--older-than", type=_argtype(parse_age), default=None, help="age bound, e.g. 7d or 12h")
    prune.set_defaults(func=run_prune)

    clear = actions.add_parser("clear", parents=[common], help="delete everything in the cache")
    clear.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    clear.set_defaults(func=run_clear)


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[cache.CacheStore]:
    import cache

    given = getattr(args, "cache_dir", None)
    if given and _missing_dir(cache.resolve_cache_dir(given)):
        # A typo in --cache-dir must not create a new, empty cache and report on that.
        raise ConfigError(
            f"no cache at {cache.resolve_cache_dir(given)}",
            key_path="--cache-dir",
            hint="check the path: a cache directory is created by `builder plan` or `builder build`",
        )
    try:
        store = cache.open_cache(getattr(args, "cache_dir", None))
    except cache.CacheUnavailable as exc:
        raise CacheError(str(exc)) from exc  # the message already says how to fix it
    with store:
        yield store
        for warning in store.warnings:
            output.warn(warning)


def _missing_dir(path: Path) -> bool:
    """True when ``path`` does not exist but could be created (under a file it is "unusable" instead)."""
    if path.exists():
        return False
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir()


def run_stats(args: argparse.Namespace) -> int:
    """Print counts and sizes."""
    with _opened(args) as store:
        s = store.summary()
    if args.format == "json":
        output.print_json(s.to_json())
        return EXIT_OK
    for label, value in (
        ("cache", s.path),
        ("steps", f"{s.steps} (layers {format_size(s.layer_bytes)})"),
        ("plans", f"{s.plans} of {s.apps} app{'s' if s.apps != 1 else ''}"),
        ("file digests", f"{s.stat_files} files in {s.stat_roots} snapshot{'s' if s.stat_roots != 1 else ''}"),
        ("resolutions", str(s.resolutions)),
        ("size", f"{format_size(s.entry_bytes)} (on disk {format_size(s.disk_bytes)})"),
        ("last used", f"{format_time(s.oldest_used_at)} .. {format_time(s.newest_used_at)}"),
    ):
        output.out(f"{label + ':':<14}{value}")
    return EXIT_OK


def run_ls(args: argparse.Namespace) -> int:
    """List step records."""
    with _opened(args) as store:
        records = list(store.steps.ls(app=args.app))
    if args.format == "json":
        output.print_json([r.to_json() for r in records])
        return EXIT_OK
    rows = [("KEY", "STEP", "APP", "ENGINE", "DURATION", "SIZE", "LAST USED")]
    rows += [
        (
            r.key[:12],
            r.step_id,
            r.app,
            r.engine,
            f"{r.duration_s:.1f}s",
            format_size(r.size_bytes),
            format_time(r.last_used_at),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        output.out("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def run_prune(args: argparse.Namespace) -> int:
    """Prune by age and/or size."""
    if args.max_size is None and args.older_than is None:
        raise ConfigError(
            "cache prune needs a bound", hint="pass --max-size (e.g. 500MB) and/or --older-than (e.g. 7d)"
        )
    with _opened(args) as store:
        result = store.prune(max_bytes=args.max_size, older_than_s=args.older_than)
    if args.format == "json":
        output.print_json(result.to_json())
    else:
        output.out(
            f"removed {result.removed} entries ({format_size(result.freed_bytes)}); "
            f"{result.remaining_entries} entries ({format_size(result.remaining_bytes)}) remain"
        )
    return EXIT_OK


def run_clear(args: argparse.Namespace) -> int:
    """Delete everything, after confirmation."""
    with _opened(args) as store:
        if not args.yes:
            _confirm(f"delete everything in the cache at {store.path}?")
        removed = store.clear()
    if args.format == "json":
        output.print_json({"removed": removed, "path": str(store.path)})
    else:
        output.out(f"cleared {store.path} ({removed} entries)")
    return EXIT_OK


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise ConfigError(
            f"refusing to {question.rstrip('?')} without confirmation", key_path="--yes", hint="pass --yes"
        )
    output.info(f"{question} [y/N]")
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CacheError("cache clear cancelled")
