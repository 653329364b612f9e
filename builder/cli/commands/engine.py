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
    group.add_argument("--tls-ca", type=Path, default=None, metavar="FILE",
                       help="CA certificate that signed the engine's certificate " + tcp.format("CA", "ca.pem"))
    group.add_argument("--tls-cert", type=Path, default=None, metavar="FILE",
                       help="client certificate " + tcp.format("CERT", "cert.pem"))
    group.add_argument("--tls-key", type=Path, default=None, metavar="FILE",
                       help="client private key " + tcp.format("KEY", "key.pem"))
    group.add_argument("--tls-server-name", default=None, metavar="NAME",
                       help="name the engine's certificate must carry, when not the host of the address")
    group.add_argument("--insecure", action="store_true",
                       help="allow a TCP engine without TLS (everything sent, project files included, is cleartext)")
    group.add_argument("--connect-timeout", type=_seconds, default=None, metavar="SECONDS",
                       help="seconds for the connect and for the TLS handshake each "
                       "(default: $BUILDER_CONNECT_TIMEOUT, else 10)")


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

    return TLSConfig(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key, server_name=args.tls_server_name,
                     insecure=insecure)


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
        f"  cache export:        {', '.join(sorted(caps.cache_export_types))}",
        f"  llb caps ({len(caps.llb_caps)}):       {' '.join(sorted(caps.llb_caps))}",
    ]
