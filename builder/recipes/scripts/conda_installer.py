"""Install a conda package set into a prefix with py-rattler (runs inside the build, in a tools venv).

argv: SPEC_JSON PREFIX.  SPEC_JSON: {"specs": [...], "channels": [...], "lock": str|null,
"platform": "linux-64", "cache": dir}.  With a conda-lock file, every locked package of the
platform becomes an exact ``name==version=build`` spec, so the solve reproduces the lock.

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


def locked_specs(text, platform):
    import yaml

    data = yaml.safe_load(text)
    out = []
    for pkg in data.get("package", []):
        if pkg.get("manager", "conda") == "conda" and pkg.get("platform") == platform:
            build = (pkg.get("url", "").rsplit("/", 1)[-1].rsplit("-", 1)[-1]).split(
                "."
            )[0]
            out.append(
                f"{pkg['name']}=={pkg['version']}={build}"
                if build
                else f"{pkg['name']}=={pkg['version']}"
            )
    return out


async def main(spec, prefix):
    import rattler

    platform = spec["platform"]
    specs = locked_specs(spec["lock"], platform) if spec.get("lock") else spec["specs"]
    channels = [rattler.Channel(c) for c in (spec["channels"] or ["conda-forge"])]
    print("conda: solving", " ".join(specs), flush=True)
    records = await rattler.solve(
        sources=channels,
        specs=specs,
        platforms=[rattler.Platform(platform), rattler.Platform("noarch")],
        virtual_packages=rattler.VirtualPackage.detect(),
    )
    print(f"conda: installing {len(records)} packages into {prefix}", flush=True)
    await rattler.install(
        records,
        target_prefix=prefix,
        cache_dir=spec.get("cache") or None,
        show_progress=False,
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
