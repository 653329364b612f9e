"""Cerebrium's default ("Cortex") runtime: every public function of ``main.py`` is an endpoint.

This file runs inside the image, under the app's own Python, and uses only the
standard library so it can never disturb (or be disturbed by) the app's
dependencies.  builder ships it as a data file; nothing imports it.

Behaviour (Cerebrium's documented default runtime):

* ``POST /{function}``: a function of ``main.py`` whose name does not start
  with ``_``; the JSON body's object maps to its parameters.  The answer is
  ``{"run_id", "run_time_ms", "result"}`` with 200, or 500 (and the traceback
  in the log) when the function raises.  A returned dict with a
  ``status_code`` sets the HTTP status.
* ``async def`` functions run on one event loop shared by all calls.
* Generators (sync or async) stream Server-Sent Events (``data:`` lines) when
  the request accepts ``text/event-stream``; otherwise their items come back
  as a list.
* ``?async=true`` answers 202 with only a ``run_id`` and runs the call in the
  background (its outcome goes to the log).
* ``GET /health`` answers while the process lives; ``GET /ready`` answers 200
  once ``main.py`` has been imported (its top level is where apps load
  models), 503 before.  If the import fails, the traceback goes to the log
  and the process exits with status 1.

Usage: ``python cortex_server.py [--app-dir /cortex] [--port 8000] [--module main]``.

``__version__`` names this runtime in plans; builder keys the image's runtime layer on this
file's bytes, so any edit is a predicted rebuild.
"""

__version__ = "1.0"

import argparse
import asyncio
import importlib
import inspect
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 256 * 1024 * 1024
_SIMPLE_TYPES = (int, float, str, bool)


class CallError(Exception):
    """A request the function cannot be called with (answered 4xx, never 500)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class App:
    """The imported ``main`` module, its endpoints and the shared event loop."""

    def __init__(self, module_name):
        self.module_name = module_name
        self.module = None
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="cortex-loop", daemon=True).start()

    def load(self):
        self.module = importlib.import_module(self.module_name)
        self.ready.set()

    def function(self, name):
        if not name or name.startswith("_") or self.module is None:
            return None
        fn = getattr(self.module, name, None)
        if not inspect.isfunction(fn) or getattr(fn, "__module__", None) != self.module.__name__:
            return None
        return fn

    def run_coroutine(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


def bind_arguments(fn, body):
    """Map the request's JSON object onto ``fn``'s parameters, or raise :class:`CallError` (422)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise CallError(422, "the request body must be a JSON object mapping parameter names to values")
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(**body)
    except TypeError as exc:
        raise CallError(422, "cannot call %s: %s" % (fn.__name__, exc)) from None
    for name, value in list(bound.arguments.items()):
        parameter = signature.parameters[name]
        bound.arguments[name] = _coerce(fn.__name__, name, parameter.annotation, value)
    return bound


def _coerce(function, name, annotation, value):
    if isinstance(annotation, str):  # postponed annotations: only the simple builtins are understood
        annotation = {"int": int, "float": float, "str": str, "bool": bool}.get(annotation, inspect.Parameter.empty)
    if annotation not in _SIMPLE_TYPES or value is None:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
        return value
    raise CallError(422, "parameter %r of %s must be %s, got %s" % (name, function, annotation.__name__,
                                                                   type(value).__name__))


def _json_default(value):
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    for method in ("model_dump", "dict", "tolist"):
        if callable(getattr(value, method, None)):
            return getattr(value, method)()
    return str(value)


def encode(payload):
    return json.dumps(payload, default=_json_default).encode("utf-8")


def log(message):
    sys.stderr.write("cortex: %s\n" % message)
    sys.stderr.flush()


class Handler(BaseHTTPRequestHandler):
    server_version = "cortex"
    app = None  # set by serve()

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log("%s %s" % (self.address_string(), format % args))

    def _send(self, status, payload, headers=()):
        data = encode(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/health":
            self._send(200, {"status": "ok"})
        elif path == "/ready":
            if self.app.ready.is_set():
                self._send(200, {"status": "ready"})
            else:
                self._send(503, {"status": "loading"})
        elif self.app.function(path.strip("/")) is not None:
            self._send(405, {"error": "use POST to call %s" % path.strip("/")}, [("Allow", "POST")])
        else:
            self._send(404, {"error": "no such endpoint: %s" % path})

    def do_POST(self):
        url = urlsplit(self.path)
        name = url.path.strip("/")
        if not self.app.ready.is_set():
            self._send(503, {"error": "the app is still loading"})
            return
        fn = self.app.function(name)
        if fn is None:
            self._send(404, {"error": "no such function: %s (public functions of main.py are endpoints)" % name})
            return
        run_id = self.headers.get("X-Request-Id") or uuid.uuid4().hex
        try:
            bound = bind_arguments(fn, self._read_json())
        except CallError as exc:
            self._send(exc.status, {"run_id": run_id, "error": exc.message})
            return
        query = parse_qs(url.query)
        if query.get("async", [""])[-1].lower() in ("true", "1", "yes"):
            threading.Thread(target=self._run_background, args=(fn, bound, run_id), daemon=True).start()
            self._send(202, {"run_id": run_id})
            return
        if _is_generator(fn) and "text/event-stream" in self.headers.get("Accept", ""):
            self._stream(fn, bound, run_id)
            return
        self._call(fn, bound, run_id)

    def _read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise CallError(413, "the request body is larger than %d bytes" % MAX_BODY)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise CallError(400, "the request body is not JSON: %s" % exc) from None

    def _call(self, fn, bound, run_id):
        started = time.perf_counter()
        try:
            result = invoke(self.app, fn, bound)
        except Exception as exc:  # the app's own error: a 500 with its message, the traceback in the log
            log("run %s: %s raised\n%s" % (run_id, fn.__name__, traceback.format_exc()))
            self._send(500, {"run_id": run_id, "run_time_ms": _ms(started), "error": "%s: %s" % (type(exc).__name__, exc)})
            return
        status = 200
        if isinstance(result, dict) and isinstance(result.get("status_code"), int) and 100 <= result["status_code"] <= 599:
            status = result["status_code"]
        self._send(status, {"run_id": run_id, "run_time_ms": _ms(started), "result": result})

    def _run_background(self, fn, bound, run_id):
        started = time.perf_counter()
        try:
            invoke(self.app, fn, bound)
            log("run %s: %s finished in %.1f ms" % (run_id, fn.__name__, _ms(started)))
        except Exception:
            log("run %s: %s raised\n%s" % (run_id, fn.__name__, traceback.format_exc()))

    def _stream(self, fn, bound, run_id):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Run-Id", run_id)
        self.end_headers()
        self.close_connection = True
        try:
            for item in iterate(self.app, fn(*bound.args, **bound.kwargs)):
                data = item if isinstance(item, str) else encode(item).decode("utf-8")
                lines = "".join("data: %s\n" % line for line in data.split("\n"))
                self.wfile.write((lines + "\n").encode("utf-8"))
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            log("run %s: the client left before %s finished" % (run_id, fn.__name__))
        except Exception as exc:
            log("run %s: %s raised\n%s" % (run_id, fn.__name__, traceback.format_exc()))
            message = encode({"error": "%s: %s" % (type(exc).__name__, exc)}).decode("utf-8")
            self.wfile.write(("event: error\ndata: %s\n\n" % message).encode("utf-8"))


def _is_generator(fn):
    return inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)


def _ms(started):
    return round((time.perf_counter() - started) * 1000, 3)


def invoke(app, fn, bound):
    """Call ``fn`` and return its result; generators are collected into a list."""
    if inspect.iscoroutinefunction(fn):
        return app.run_coroutine(fn(*bound.args, **bound.kwargs))
    if _is_generator(fn):
        return list(iterate(app, fn(*bound.args, **bound.kwargs)))
    result = fn(*bound.args, **bound.kwargs)
    if inspect.isawaitable(result):
        return app.run_coroutine(_await(result))
    return result


async def _await(awaitable):
    return await awaitable


def iterate(app, generator):
    """Yield the items of a sync or async generator (the latter driven on the app's loop)."""
    if not inspect.isasyncgen(generator):
        yield from generator
        return
    while True:
        try:
            yield app.run_coroutine(generator.__anext__())
        except StopAsyncIteration:
            return


def _stop(signum, frame):
    raise SystemExit(0)


def serve(app_dir, port, module):
    # As PID 1 in a container, SIGTERM is ignored unless handled: `docker stop` would wait for SIGKILL.
    signal.signal(signal.SIGTERM, _stop)
    os.chdir(app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    app = App(module)
    Handler.app = app
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="cortex-http", daemon=True).start()
    log("listening on port %d; importing %s from %s" % (port, module, app_dir))
    started = time.perf_counter()
    try:
        app.load()
    except BaseException:
        log("importing %s failed:\n%s" % (module, traceback.format_exc()))
        server.shutdown()
        return 1
    names = sorted(n for n in dir(app.module) if app.function(n) is not None)
    log("ready in %.1f s; endpoints: %s" % (time.perf_counter() - started, ", ".join("/" + n for n in names) or "(none)"))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Cerebrium's default runtime: main.py's functions as endpoints")
    parser.add_argument("--app-dir", default=os.environ.get("CORTEX_APP_DIR", "/cortex"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("CORTEX_PORT", "8000")))
    parser.add_argument("--module", default="main")
    args = parser.parse_args(argv)
    return serve(args.app_dir, args.port, args.module)


if __name__ == "__main__":
    sys.exit(main())
