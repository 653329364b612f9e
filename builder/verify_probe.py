"""Readiness probes that run inside the verified container, through the Engine's exec API.

The probe runs in the container's own network namespace, so it reaches the app on
``127.0.0.1:<port>`` whether the engine is this machine's dockerd or one across the
network, and whatever else listens on that port of the engine's host. Two programs do
the same thing: Python (every Cerebrium image has it) and, when an image has no
``python3``, bash's ``/dev/tcp``. The port and the endpoint are passed as arguments,
never spliced into the program text.

Each exits 0 when the check passes and prints one line saying what it saw
(``GET /ready -> 200``, ``TCP 127.0.0.1:8000 accepted``).
"""

from __future__ import annotations

from typing import Protocol

#: Exit codes a shell gives when the program is missing or cannot be run.
_NOT_FOUND = (126, 127)

PYTHON_PROBE = """\
import socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
try:
    s = socket.create_connection(("127.0.0.1", port), 2)
except OSError as e:
    print(f"GET {path}: {e.strerror or e}" if path else f"TCP 127.0.0.1:{port}: {e.strerror or e}")
    sys.exit(1)
if not path:
    print(f"TCP 127.0.0.1:{port} accepted")
    sys.exit(0)
s.settimeout(2)
head = b""
try:
    s.sendall(f"GET {path} HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\nUser-Agent: builder-verify\\r\\n"
              "Connection: close\\r\\n\\r\\n".encode("latin-1"))
    while b"\\r\\n" not in head and len(head) < 8192:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
except OSError as e:
    print(f"GET {path}: {e.strerror or e}")
    sys.exit(1)
parts = head.split(b"\\r\\n", 1)[0].decode("latin-1").split()
code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
print(f"GET {path} -> {code}" if code else f"GET {path}: no HTTP answer")
sys.exit(0 if 200 <= code < 300 else 1)
"""

BASH_PROBE = r"""
port=$1 path=$2
if ! exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
  if [ -n "$path" ]; then echo "GET $path: Connection refused"; else echo "TCP 127.0.0.1:$port: Connection refused"; fi
  exit 1
fi
if [ -z "$path" ]; then echo "TCP 127.0.0.1:$port accepted"; exit 0; fi
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUser-Agent: builder-verify\r\nConnection: close\r\n\r\n' "$path" "$port" >&3
read -t 2 -r proto code rest <&3
if [ -z "$code" ]; then echo "GET $path: no HTTP answer"; exit 1; fi
echo "GET $path -> $code"
case $code in 2??) exit 0 ;; *) exit 1 ;; esac
"""

PROGRAMS: tuple[tuple[str, ...], ...] = (
    ("python3", "-c", PYTHON_PROBE),
    ("bash", "-c", BASH_PROBE, "builder-verify-probe"),
)


class Exec(Protocol):
    """Runs a command in a container and returns (exit code, output): ``DockerAPI.exec_in``."""

    def __call__(self, container_id: str, argv: list[str], *, timeout: float = ...) -> tuple[int, str]: ...


class ExecProber:
    """Probe a container from inside it; remembers which probe program its image has."""

    def __init__(self, exec_in: Exec) -> None:
        self._exec = exec_in
        self._program: tuple[str, ...] | None = None

    def __call__(self, container_id: str, port: int, endpoint: str) -> tuple[bool, str]:
        """(passed, what was seen) for one check of ``endpoint`` (TCP connect when empty) on ``port``."""
        path = "" if not endpoint else (endpoint if endpoint.startswith("/") else "/" + endpoint)
        candidates = (self._program,) if self._program is not None else PROGRAMS
        last = ""
        for program in candidates:
            assert program is not None
            code, text = self._exec(container_id, [*program, str(port), path], timeout=15.0)
            detail = text.strip().splitlines()[-1] if text.strip() else f"probe exited with {code}"
            if code in _NOT_FOUND or (code == -1 and not text.strip()):
                last = f"{program[0]} is not in the image"
                continue
            self._program = program
            return code == 0, detail
        return False, f"cannot probe inside the container: neither python3 nor bash runs there ({last})"
