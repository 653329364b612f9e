"""A small Docker Engine API client (stdlib ``http.client`` over the daemon's socket).

Only what startup verification needs: create/start/inspect/remove containers,
read their logs, list them by label, inspect images.  Every failure becomes an
``EngineError`` (``EngineUnavailable`` when nothing answers), naming the
daemon and the call.

>>> api = DockerAPI.unix("/var/run/docker.sock")          # doctest: +SKIP
>>> api.inspect_image("debian:bookworm-slim")["Id"]       # doctest: +SKIP
'sha256:…'
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from builder.errors import EngineError, EngineUnavailable

if TYPE_CHECKING:
    from builder.engines.buildkit.tls import TLSConfig

API_PREFIX = "/v1.41"  # dockerd 20.10's API version; newer daemons serve older versions too
_TIMEOUT = 30.0


class _UnixConnection(http.client.HTTPConnection):
    """``HTTPConnection`` whose transport is a unix stream socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _ConnectTimeout(OSError):
    """The connect or the TLS handshake took longer than the connect timeout."""


class _TLSConnection(http.client.HTTPConnection):
    """HTTPS to dockerd: the connect and the handshake get ``connect_timeout``, each call ``timeout``."""

    def __init__(
        self,
        host: str,
        port: int | None,
        context: ssl.SSLContext,
        server_name: str,
        connect_timeout: float,
        timeout: float,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._context, self._server_name, self._connect_timeout = context, server_name, connect_timeout

    def connect(self) -> None:
        try:
            raw = socket.create_connection((self.host, self.port), self._connect_timeout)
        except TimeoutError as exc:
            raise _ConnectTimeout(str(exc)) from exc
        try:
            sock = self._context.wrap_socket(raw, server_hostname=self._server_name, do_handshake_on_connect=False)
            sock.settimeout(self._connect_timeout)
            sock.do_handshake()
        except TimeoutError as exc:
            raw.close()
            raise _ConnectTimeout(str(exc)) from exc
        except BaseException:
            raw.close()
            raise
        sock.settimeout(self.timeout)
        self.sock = sock


class DockerNotFound(EngineError):
    """The daemon answered 404 (no such container or image)."""


@dataclass(frozen=True, slots=True)
class ContainerState:
    """What verification needs from ``GET /containers/{id}/json``."""

    running: bool
    status: str
    exit_code: int
    error: str = ""


class DockerAPI:
    """Talk to one Docker daemon; ``where`` names it in messages (``unix:///…`` or ``tcp://…``)."""

    def __init__(
        self,
        *,
        path: str | None = None,
        host: str | None = None,
        port: int | None = None,
        timeout: float = _TIMEOUT,
        tls: TLSConfig | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        if (path is None) == (host is None):
            raise ValueError("DockerAPI needs exactly one of path= or host=/port=")
        self._path, self._host, self._port, self._timeout = path, host, port, timeout
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._context: ssl.SSLContext | None = None
        if host is not None and tls is not None and not tls.insecure:
            self._context = tls.ssl_context()
        self.where = f"unix://{path}" if path is not None else f"tcp://{host}:{port}"

    @classmethod
    def unix(cls, path: str, *, timeout: float = _TIMEOUT) -> DockerAPI:
        """The daemon listening on the unix socket ``path``."""
        return cls(path=path, timeout=timeout)

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._path is not None:
            return _UnixConnection(self._path, timeout)
        host = str(self._host).strip("[]")
        if self._context is not None:
            assert self._tls is not None
            return _TLSConnection(
                host,
                self._port,
                self._context,
                self._tls.server_name or host,
                min(timeout, self._connect_timeout),
                timeout,
            )
        return http.client.HTTPConnection(host, self._port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """One API call; returns (HTTP status, body).  Transport errors raise EngineError."""
        url = API_PREFIX + path + ("?" + urllib.parse.urlencode(sorted(query.items())) if query else "")
        payload = None if body is None else json.dumps(body, sort_keys=True).encode("utf-8")
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn = self._connection(self._timeout if timeout is None else timeout)
        try:
            conn.request(method, url, body=payload, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise EngineUnavailable(
                f"no Docker daemon answers at {self.where}: {exc.strerror or exc}", tried=(self.where,)
            ) from exc
        except (ssl.SSLError, _ConnectTimeout) as exc:
            from builder.engines.buildkit.address import EngineAddress
            from builder.engines.buildkit.tls import describe_tls_error

            cause = exc.__cause__ if isinstance(exc, _ConnectTimeout) and exc.__cause__ else exc
            raise describe_tls_error(
                cause, EngineAddress("docker", host=self._host, port=self._port), self._connect_timeout
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError(f"Docker daemon at {self.where}: {method} {path} failed: {exc}") from exc
        finally:
            conn.close()

    def _json(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kw: Any) -> Any:
        status, data = self.request(method, path, **kw)
        if status == 404:
            raise DockerNotFound(f"Docker daemon at {self.where}: {_message(data) or 'not found'}")
        if status not in ok:
            raise EngineError(
                f"Docker daemon at {self.where}: {method} {path} answered HTTP {status}: {_message(data)}"
            )
        return json.loads(data) if data.strip() else None

    def ping(self) -> bool:
        """True when the daemon answers ``GET /_ping``."""
        try:
            status, _ = self.request("GET", "/_ping", timeout=2.0)
        except EngineError:
            return False
        return status == 200

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """``GET /images/{ref}/json`` (DockerNotFound when the image does not exist)."""
        result: dict[str, Any] = self._json("GET", f"/images/{urllib.parse.quote(ref, safe='')}/json")
        return result

    def create_container(self, spec: Mapping[str, Any], *, name: str | None = None) -> str:
        """``POST /containers/create``; returns the new container's id."""
        query = {"name": name} if name else None
        result = self._json("POST", "/containers/create", ok=(201,), query=query, body=dict(spec))
        return str(result["Id"])

    def start_container(self, container_id: str) -> None:
        """``POST /containers/{id}/start``."""
        self._json("POST", f"/containers/{container_id}/start", ok=(204, 304))

    def container_state(self, container_id: str) -> ContainerState:
        """Running flag, status text and exit code of a container."""
        info = self._json("GET", f"/containers/{container_id}/json")
        state = info.get("State", {})
        return ContainerState(
            bool(state.get("Running")),
            str(state.get("Status", "")),
            int(state.get("ExitCode") or 0),
            str(state.get("Error") or ""),
        )

    def container_logs(self, container_id: str, *, tail: int = 100) -> list[str]:
        """The last ``tail`` lines of stdout and stderr, interleaved as the daemon stored them."""
        status, data = self.request(
            "GET", f"/containers/{container_id}/logs", query={"stdout": "1", "stderr": "1", "tail": str(tail)}
        )
        if status != 200:
            raise EngineError(f"Docker daemon at {self.where}: logs of {container_id[:12]} answered HTTP {status}")
        text = demultiplex(data).decode("utf-8", "replace")
        return text.splitlines()[-tail:] if tail > 0 else []

    def remove_container(self, container_id: str) -> None:
        """``DELETE /containers/{id}?force=1&v=1``; a container already gone is fine."""
        status, data = self.request("DELETE", f"/containers/{container_id}", query={"force": "1", "v": "1"})
        if status not in (204, 404, 409):  # 409: removal already in progress
            raise EngineError(
                f"Docker daemon at {self.where}: could not remove container {container_id[:12]}: "
                f"HTTP {status} {_message(data)}"
            )

    def exec_in(self, container_id: str, argv: list[str], *, timeout: float = 30.0) -> tuple[int, str]:
        """Run ``argv`` inside a running container (the Engine's exec API); return (exit code, output).

        The command runs in the container's namespaces (its network included), wherever the
        daemon is. Output is stdout and stderr together, at most 64 KiB.
        """
        created = self._json(
            "POST",
            f"/containers/{container_id}/exec",
            ok=(201,),
            body={"AttachStdout": True, "AttachStderr": True, "Tty": False, "Cmd": list(argv)},
        )
        exec_id = str(created["Id"])
        status, data = self.request(
            "POST", f"/exec/{exec_id}/start", body={"Detach": False, "Tty": False}, timeout=timeout
        )
        if status != 200:
            raise EngineError(
                f"Docker daemon at {self.where}: exec in {container_id[:12]} answered HTTP {status}: {_message(data)}"
            )
        info = self._json("GET", f"/exec/{exec_id}/json")
        code = info.get("ExitCode") if isinstance(info, dict) else None
        text = demultiplex(data[: 64 * 1024]).decode("utf-8", "replace")
        return (int(code) if isinstance(code, int) else -1), text

    def put_archive(self, container_id: str, path: str, tar_bytes: bytes) -> None:
        """``PUT /containers/{id}/archive?path=…``: unpack a tar into a container's filesystem."""
        conn = self._connection(self._timeout)
        url = API_PREFIX + f"/containers/{container_id}/archive?" + urllib.parse.urlencode({"path": path})
        try:
            conn.request("PUT", url, body=tar_bytes, headers={"Content-Type": "application/x-tar"})
            response = conn.getresponse()
            status, data = response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError(
                f"Docker daemon at {self.where}: copying files into {container_id[:12]} failed: {exc}"
            ) from exc
        finally:
            conn.close()
        if status != 200:
            raise EngineError(
                f"Docker daemon at {self.where}: copying files into {container_id[:12]} answered "
                f"HTTP {status}: {_message(data)}"
            )

    def stop_container(self, container_id: str, *, grace: int = 0) -> None:
        """``POST /containers/{id}/stop?t=grace``; a container already stopped is fine."""
        self._json("POST", f"/containers/{container_id}/stop", ok=(204, 304), query={"t": str(grace)})

    def restart_container(self, container_id: str, *, grace: int = 0) -> None:
        """``POST /containers/{id}/restart?t=grace``: the same filesystem, a fresh main process."""
        self._json("POST", f"/containers/{container_id}/restart", ok=(204,), query={"t": str(grace)})

    def follow_logs(self, container_id: str, *, since: int = 0) -> Iterator[str]:
        """Stream a container's stdout and stderr lines as they are written, until it stops."""
        conn = self._connection(86400.0)  # logs may stay quiet for a long time
        query = urllib.parse.urlencode({"follow": "1", "stdout": "1", "stderr": "1", "since": str(since)})
        try:
            conn.request("GET", API_PREFIX + f"/containers/{container_id}/logs?{query}")
            response = conn.getresponse()
            if response.status != 200:
                return
            pending = b""
            while True:
                head = response.read(8)
                if len(head) < 8:
                    break
                if head[0] not in (0, 1, 2) or head[1:4] != b"\x00\x00\x00":  # a TTY container: raw text
                    pending += head + response.read1(65536)
                else:
                    pending += response.read(int.from_bytes(head[4:8], "big"))
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
            if pending:
                yield pending.decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            return
        finally:
            conn.close()

    def stream(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """One call whose answer is a stream of JSON messages (push, pull), read as they come.

        Each read waits at most the client's timeout; an HTTP error status raises EngineError.
        """
        url = API_PREFIX + path + ("?" + urllib.parse.urlencode(sorted(query.items())) if query else "")
        conn = self._connection(self._timeout)
        try:
            try:
                conn.request(method, url, headers=dict(headers or {}))
                response = conn.getresponse()
            except (ConnectionRefusedError, FileNotFoundError) as exc:
                raise EngineUnavailable(
                    f"no Docker daemon answers at {self.where}: {exc.strerror or exc}", tried=(self.where,)
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise EngineError(f"Docker daemon at {self.where}: {method} {path} failed: {exc}") from exc
            if response.status != 200:
                raise EngineError(
                    f"Docker daemon at {self.where}: {method} {path} answered HTTP {response.status}: "
                    f"{_message(response.read())}"
                )
            yield from _json_lines(response, f"{self.where}: {method} {path}")
        finally:
            conn.close()

    def has_network(self, name: str) -> bool:
        """True when the daemon has a network called ``name`` (e.g. ``bridge``)."""
        try:
            self._json("GET", f"/networks/{urllib.parse.quote(name, safe='')}")
        except DockerNotFound:
            return False
        return True

    def list_images(self, *, label: str | None = None) -> list[dict[str, Any]]:
        """Images, optionally only those carrying ``label`` (``key`` or ``key=value``)."""
        query = {"filters": json.dumps({"label": [label]})} if label else None
        result: list[dict[str, Any]] = self._json("GET", "/images/json", query=query)
        return result

    def list_containers(self, *, label: str | None = None) -> list[dict[str, Any]]:
        """Every container (running or not), optionally only those carrying ``label``."""
        query = {"all": "1"}
        if label:
            query["filters"] = json.dumps({"label": [label]})
        result: list[dict[str, Any]] = self._json("GET", "/containers/json", query=query)
        return result


def _json_lines(response: http.client.HTTPResponse, what: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a streamed answer, one per line (non-objects are skipped)."""
    try:
        for raw in response:
            line = raw.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                yield message
    except (OSError, http.client.HTTPException) as exc:
        raise EngineError(f"Docker daemon at {what}: the answer stream broke: {exc}") from exc


def demultiplex(data: bytes) -> bytes:
    """Undo Docker's log framing (8-byte headers: stream, 3 zero bytes, big-endian size).

    Containers created without a TTY have framed logs; anything that does not
    look framed is returned unchanged.
    """
    out = bytearray()
    pos = 0
    while pos + 8 <= len(data):
        stream, size = data[pos], int.from_bytes(data[pos + 4 : pos + 8], "big")
        if stream not in (0, 1, 2) or data[pos + 1 : pos + 4] != b"\x00\x00\x00":
            return data if pos == 0 else bytes(out) + data[pos:]
        out += data[pos + 8 : pos + 8 + size]
        pos += 8 + size
    return bytes(out) + data[pos:] if pos else data


def _message(data: bytes) -> str:
    try:
        value = json.loads(data)
    except ValueError:
        return data[:300].decode("utf-8", "replace").strip()
    return str(value.get("message", "")) if isinstance(value, dict) else ""
