"""``builder engine info``: which BuildKit engine answers, and what it can do.

Prints the address, the kind (buildkitd or dockerd), the BuildKit version (when the
engine reports one), the workers and their platforms, and the detected capabilities.
Exit 0 when an engine answers, 4 when none does.

Other commands that talk to an engine reuse :func:`add_engine_arguments` and
:func:`open_engine_from_args` so ``--engine`` and the TLS flags mean the same everywhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from builder.cli import output
from builder.cli.errors import EXIT_OK

if TYPE_CHECKING:  # the engine modules (grpc, protobuf) load only when a command talks to an engine
    from builder.engines.buildkit.caps import Capabilities
    from builder.engines.buildkit.client import EngineClient, EngineInfo
    from builder.engines.buildkit.tls import TLSConfig


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--engine`` and the ``--tls-*`` flags to a command's parser."""
    group = parser.add_argument_group("engine")
    group.add_argument(
        "--engine",
        metavar="ADDR",
        default=None,
        help="BuildKit address: unix:///path, tcp://host:port (buildkitd), docker://, "
        "docker:///path/to/docker.sock or docker+tcp://host:port (dockerd) (default: $BUILDKIT_HOST, else auto-detect)",
    )
    tcp = "for TCP engines (default: $BUILDKIT_TLS_{}, or $DOCKER_CERT_PATH/{} for dockerd)"
    group.add_argument(
        "--tls-ca",
        type=Path,
        default=None,
        metavar="FILE",
        help="CA certificate that signed the engine's certificate " + tcp.format("CA", "ca.pem"),
    )
    group.add_argument(
        "--tls-cert",
        type=Path,
        default=None,
        metavar="FILE",
        help="client certificate " + tcp.format("CERT", "cert.pem"),
    )
    group.add_argument(
        "--tls-key", type=Path, default=None, metavar="FILE", help="client private key " + tcp.format("KEY", "key.pem")
    )
    group.add_argument(
        "--tls-server-name",
        default=None,
        metavar="NAME",
        help="name the engine's certificate must carry, when not the host of the address",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="allow a TCP engine without TLS (everything sent, project files included, is cleartext)",
    )
    group.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds for the connect and for the TLS handshake each (default: $BUILDER_CONNECT_TIMEOUT, else 10)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds in (0, 3600)")
    return value


def tls_from_args(args: argparse.Namespace) -> TLSConfig | None:
    """The TLS settings the flags ask for (``--insecure``: plain TCP), or None to use the environment's."""
    values = (args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)
    insecure = bool(getattr(args, "insecure", False))
    if all(v is None for v in values) and not insecure:
        return None
    from builder.engines.buildkit.tls import TLSConfig

    return TLSConfig(
        ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key, server_name=args.tls_server_name, insecure=insecure
    )


def open_engine_from_args(args: argparse.Namespace) -> EngineClient:
    """Connect to the engine the flags (or the environment) name."""
    from builder.engines.buildkit.client import open_engine

    return open_engine(args.engine, tls=tls_from_args(args), connect_timeout=args.connect_timeout)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``engine`` command group (``engine info``)."""
    parser = sub.add_parser("engine", help="inspect the BuildKit engine", description="Inspect the BuildKit engine.")
    actions = parser.add_subparsers(dest="engine_command", metavar="ACTION", required=True)
    info = actions.add_parser(
        "info",
        help="show the engine's address, version, workers, platforms and capabilities",
        description="Connect to the engine (--engine, else $BUILDKIT_HOST, else auto-detect) and show its "
        "address, kind, BuildKit version, workers, platforms and capabilities. Exit 4 when none answers.",
    )
    add_engine_arguments(info)
    info.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    info.set_defaults(func=run_info)
    du = actions.add_parser(
        "du",
        help="show how much disk the engine's build cache holds",
        description="The engine's build cache (BuildKit DiskUsage): total and reclaimable bytes (as `docker system "
        "df` counts them), bytes by record type, and the largest records with the builder step that made them "
        "when builder can tell.",
    )
    add_engine_arguments(du)
    du.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    du.add_argument("--top", type=int, default=10, metavar="N", help="how many of the largest records (default 10)")
    du.set_defaults(func=run_du)
    pr = actions.add_parser(
        "prune",
        help="free the engine's build cache",
        description="Free build cache on the engine (BuildKit Prune), printing each record as it is freed. The "
        "step cache then forgets the steps whose layers may be gone, so the next plan predicts them as misses "
        '("the engine pruned it").',
    )
    add_engine_arguments(pr)
    pr.add_argument(
        "--keep-storage",
        default="0",
        metavar="SIZE",
        help="keep this much cache, e.g. 10GB (default 0: free what the other options allow)",
    )
    pr.add_argument(
        "--older-than", default=None, metavar="DURATION", help="only free records unused for this long, e.g. 24h, 7d"
    )
    pr.add_argument(
        "--all",
        action="store_true",
        help="also free records still referenced (internal and frontend records, source snapshots)",
    )
    pr.add_argument("--cache-dir", default=None, help="builder's step cache to update (default: as `build`)")
    pr.set_defaults(func=run_prune)


def run_info(args: argparse.Namespace) -> int:
    """Print the engine's info."""
    with open_engine_from_args(args) as engine:
        details = engine.info()
    if args.format == "json":
        output.print_json(details.to_json())
    else:
        for line in render_info(details):
            output.out(line)
    return EXIT_OK


def run_du(args: argparse.Namespace) -> int:
    """Print the engine's build cache usage."""
    from builder.engines.buildkit.housekeeping import disk_usage, human

    with open_engine_from_args(args) as engine:
        usage = disk_usage(engine)
    if args.format == "json":
        output.print_json(usage.to_json(args.top))
        return EXIT_OK
    output.out(f"total:       {human(usage.total)} ({usage.total} bytes, {len(usage.records)} records)")
    output.out(f"reclaimable: {human(usage.reclaimable)} ({usage.reclaimable} bytes)")
    output.out("by type:")
    for kind, (count, size) in usage.by_type().items():
        output.out(f"  {kind:<18} {count:>5}  {human(size):>9}")
    output.out("largest:")
    for r in usage.largest(args.top):
        where = f"[{r.step}]" if r.step else "-"
        text = " ".join(r.description.split())[:70]
        output.out(f"  {human(r.size):>9}  {r.record_type:<16} {where:<11} {text}")
    return EXIT_OK


def run_prune(args: argparse.Namespace) -> int:
    """Prune the engine's build cache, then forget the steps it may have freed."""
    from builder.engines.buildkit.housekeeping import (
        PruneOptions,
        disk_usage,
        human,
        newest_use,
        parse_duration,
        parse_size,
    )
    from builder.errors import ConfigError

    try:
        keep = parse_size(args.keep_storage)
    except ValueError as exc:
        raise ConfigError(str(exc), key_path="--keep-storage") from exc
    try:
        older = parse_duration(args.older_than) if args.older_than else 0.0
    except ValueError as exc:
        raise ConfigError(str(exc), key_path="--older-than") from exc
    options = PruneOptions(keep_bytes=keep, older_than_s=older, all=args.all)
    from builder.engines.buildkit.housekeeping import prune

    with open_engine_from_args(args) as engine:
        described = engine.capabilities.describe()
        # dockerd keeps pulled base images in its image store, which a build-cache prune never frees
        keep_kinds = ("base",) if engine.kind == "dockerd" else ()
        freed = prune(
            engine,
            options,
            on_record=lambda r: output.out(
                f"freed {human(r.size):>9}  {r.record_type:<16} {' '.join(r.description.split())[:70]}"
            ),
        )
        where = str(engine.address)
        held = sum(1 for r in disk_usage(engine).records if r.shared)
    total = sum(r.size for r in freed)
    everything = options.all and keep == 0 and older == 0
    forgotten = _forget_pruned(
        args.cache_dir, described, where, everything, newest_use(freed) if freed else None, keep_kinds
    )
    output.out(
        f"total freed: {human(total)} ({total} bytes, {len(freed)} records); {forgotten} recorded steps will rebuild"
    )
    if held:
        output.warn(
            f"{held} cache records are still held by images on the engine: a step whose layer one of "
            "them holds may still build as cached (remove those images to free it)"
        )
    return EXIT_OK


def _forget_pruned(
    cache_dir: str | None,
    engine: str,
    where: str,
    everything: bool,
    newest: float | None,
    keep_kinds: tuple[str, ...] = (),
) -> int:
    """Mark the step records of this engine whose layers the prune may have freed; return how many.

    Records carry the engine's description (``dockerd 26.1.5 (BuildKit …)``), not its address, so
    a prune also forgets steps built on another engine of the same version: a miss predicted
    too often, never a hit that is not there.
    """
    if not everything and newest is None:
        return 0
    import cache as cache_pkg

    with cache_pkg.open_cache(cache_dir) as store:
        steps = store.steps
        gone = [
            r.key
            for r in steps.ls()
            if r.engine == engine
            and r.kind not in keep_kinds
            and (everything or (newest is not None and r.last_used_at <= newest + 1.0))
        ]
        for key in gone:
            steps.mark_pruned(key, f"`builder engine prune` on {where}")
    return len(gone)


def render_info(info: EngineInfo) -> list[str]:
    """The text form of ``engine info`` (pure; one string per line)."""
    caps = info.capabilities
    lines = [
        f"address:   {info.address}",
        f"kind:      {info.kind}",
        f"engine:    {caps.describe()}",
        f"buildkit:  {info.buildkit_version or 'unknown (no Info API: BuildKit < 0.11)'}",
        f"platforms: {', '.join(info.platforms) or '-'}",
        "workers:",
    ]
    for worker in info.workers:
        labels = ", ".join(f"{k}={v}" for k, v in worker.labels)
        lines.append(f"  {worker.id}: {', '.join(worker.platforms)}" + (f" ({labels})" if labels else ""))
    lines += ["capabilities:", *_capability_lines(caps)]
    return lines


def _capability_lines(caps: Capabilities) -> list[str]:
    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    return [
        f"  info api:            {yes(caps.has_info)}",
        f"  mergeop:             {yes(caps.supports_mergeop)}",
        f"  exporters list:      {yes(caps.exporters_list_field)} (SolveRequest.Exporters)",
        f"  image config route:  {caps.image_config_route}",
        f"  exporters:           {', '.join(sorted(caps.exporters))}",
        f"  image store:         {caps.image_store or 'its own (buildkitd)'}",
        f"  cache export:        {', '.join(sorted(caps.cache_export_types))} (--cache-to)",
        f"  cache import:        {', '.join(sorted(caps.cache_import_types))} (--cache-from)",
        f"  llb caps ({len(caps.llb_caps)}):       {' '.join(sorted(caps.llb_caps))}",
    ]
