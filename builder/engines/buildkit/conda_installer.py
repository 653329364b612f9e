"""Install a conda package set into a prefix with py-rattler (runs inside the build, in a tools venv).

argv: SPEC_JSON PREFIX.  SPEC_JSON: {"specs": [...], "channels": [...], "lock": str|null,
"platform": "linux-64", "cache": dir}.  With a conda-lock file, every locked package of the
platform becomes an exact ``name==version=build`` spec, so the solve reproduces the lock.
"""

import asyncio
import json
import sys


def locked_specs(text, platform):
    import yaml

    data = yaml.safe_load(text)
    out = []
    for pkg in data.get("package", []):
        if pkg.get("manager", "conda") == "conda" and pkg.get("platform") == platform:
            build = (pkg.get("url", "").rsplit("/", 1)[-1].rsplit("-", 1)[-1]).split(".")[0]
            out.append(f"{pkg['name']}=={pkg['version']}={build}" if build else f"{pkg['name']}=={pkg['version']}")
    return out


async def main():
    import rattler

    with open(sys.argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    prefix = sys.argv[2]
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
    await rattler.install(records, target_prefix=prefix, cache_dir=spec.get("cache") or None, show_progress=False)


if __name__ == "__main__":
    asyncio.run(main())
