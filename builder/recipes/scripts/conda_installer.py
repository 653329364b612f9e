"""Install a conda package set into a prefix with py-rattler (runs inside the build, in a tools venv).

argv: SPEC_JSON PREFIX [TOOLS].  SPEC_JSON: {"specs": [...], "channels": [...], "platform": "linux-64",
"cache": dir}; with a conda-lock file the recipe already turned every locked package of the platform into
an exact ``name==version=build`` spec, so the solve reproduces the lock.  TOOLS: the folder holding
py-rattler (the checked, read-only install a tools run left), put first on ``sys.path``.

The process ends with ``os._exit`` once the install has returned (see ``run``): py-rattler's
tokio worker threads still attach to the interpreter for a moment after its awaited futures
resolve, and when that overlaps ``Py_FinalizeEx`` CPython aborts ("Fatal Python error:
PyGILState_Release: thread state ... must be current when releasing / Python runtime state:
finalizing", exit 134) or segfaults (139).  It hit about 1 run in 8 on a 2-core host, always
after the prefix was complete.  Skipping finalization leaves those threads nothing to race.
"""

import asyncio
import json
import os
import sys
import traceback


async def main(spec, prefix):
    import rattler

    platform = spec["platform"]
    specs = spec["specs"]
    channels = [rattler.Channel(c) for c in (spec["channels"] or ["conda-forge"])]
    print("conda: solving", " ".join(specs), flush=True)
    # the authenticated client reads NETRC: channel credentials arrive as the netrc build secret
    client = rattler.Client.authenticated_client()
    records = await rattler.solve(
        sources=channels,
        specs=specs,
        platforms=[rattler.Platform(platform), rattler.Platform("noarch")],
        virtual_packages=rattler.VirtualPackage.detect(),
        gateway=rattler.Gateway(client=client),
    )
    print(f"conda: installing {len(records)} packages into {prefix}", flush=True)
    await rattler.install(
        records,
        target_prefix=prefix,
        cache_dir=spec.get("cache") or None,
        show_progress=False,
        client=client,
    )
    print(f"conda: installed ({_rattler_version()})", flush=True)


def _rattler_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return "py-rattler " + version("py-rattler")
    except PackageNotFoundError:
        return "py-rattler, version unknown"


def run():
    """Run the install and end the process without interpreter finalization (module docstring)."""
    if len(sys.argv) > 3:
        sys.path.insert(0, sys.argv[3])
    try:
        with open(sys.argv[1], encoding="utf-8") as fh:
            spec = json.load(fh)
        asyncio.run(main(spec, sys.argv[2]))
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - every failure is reported, then the same early exit
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
