"""The fixed shell scripts the install steps run (constants: user data only ever arrives as argv or files).

Every script is run as ``/bin/sh -c SCRIPT NAME ARG...``: package names,
versions and paths are positional parameters (``"$@"``), so no user text is
ever parsed by a shell.  The only shell text from the user is
``pre_build_commands`` / ``shell_commands``, each run as ``/bin/sh -c <command>``.
"""

from __future__ import annotations

#: Where the optional extra CA bundle is mounted (a secret mount: never in a layer).
CA_PATH = "/run/secrets/builder-ca"
#: Tools the build needs but the image must not keep (uv, py-rattler) live in cache mounts here.
TOOLS_DIR = "/opt/builder-tools"

_APT_FUNCS = f"""
apt_opts=""
if [ -f {CA_PATH} ]; then apt_opts="-o Acquire::https::CAInfo={CA_PATH}"; fi
apt_install() {{
  rm -f /etc/apt/apt.conf.d/docker-clean
  apt-get $apt_opts update -q
  DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q "$@"
}}
"""

#: argv: python VERSION VENV
PYTHON = (
    "set -eu\n"
    + _APT_FUNCS
    + f"""
v="$1"; venv="$2"
have() {{ command -v "$1" >/dev/null 2>&1; }}
matches() {{ [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$v" ]; }}
py=""
if have "python$v" && matches "python$v"; then py="python$v"
elif have python3 && matches python3; then py=python3
fi
if [ -z "$py" ] || ! "$py" -c 'import ensurepip' >/dev/null 2>&1; then
  if have apt-get; then apt_install --no-install-recommends python3 python3-venv; fi
  if [ -z "$py" ] && have python3 && matches python3; then py=python3; fi
fi
if [ -n "$py" ]; then
  echo "python: using $(command -v "$py") (Python $v)"
  "$py" -m venv "$venv"
  exit 0
fi
echo "python: no Python $v in the image or its distribution; installing it with uv python install"
echo "python: (this needs network access to uv's Python download source)"
have python3 || {{ echo "python: no python3 to bootstrap uv with" >&2; exit 1; }}
tools={TOOLS_DIR}/uv
if [ ! -x "$tools/bin/uv" ]; then
  python3 -m venv /tmp/builder-uv-boot
  /tmp/builder-uv-boot/bin/python -m pip install -q --disable-pip-version-check --target "$tools" uv
  rm -rf /tmp/builder-uv-boot
fi
UV_PYTHON_INSTALL_DIR=/opt/python "$tools/bin/uv" python install "$v"
UV_PYTHON_INSTALL_DIR=/opt/python "$tools/bin/uv" venv --seed --python "$v" "$venv"
"""
)

#: argv: apt [--no-install-recommends] PACKAGE...
APT = "set -eu\n" + _APT_FUNCS + 'apt_install "$@"\n'

#: argv: pip INSTALLER VENV REQUIREMENTS CONSTRAINTS MODE  (the marker is the step's first output line)
#: MODE ``offline-first``: every requirement is pinned, so uv first tries its cache alone (no index
#: round trips when a changed set's wheels were downloaded before) and falls back to the index.
PIP = f"""set -eu
installer="$1"; venv="$2"; req="$3"; cons="$4"; mode="$5"
if [ "$installer" = uv ]; then echo UV_PIP_INSTALL_STARTED; else echo PIP_INSTALL_STARTED; fi
set -- -r "$req"
if [ -s "$cons" ]; then set -- "$@" -c "$cons"; fi
if [ "$installer" = uv ]; then
  tools={TOOLS_DIR}/uv
  if [ ! -x "$tools/bin/uv" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --target "$tools" uv
  fi
  export VIRTUAL_ENV="$venv" UV_CACHE_DIR=/root/.cache/uv UV_LINK_MODE=copy
  if [ "$mode" = offline-first ] && out=$("$tools/bin/uv" pip install --offline --python "$venv/bin/python" "$@" 2>&1); then
    printf '%s\n' "$out"
  else
    if [ "$mode" = offline-first ]; then echo "uv: not everything is in the cache; resolving with the index"; fi
    "$tools/bin/uv" pip install --python "$venv/bin/python" "$@"
  fi
else
  PIP_CACHE_DIR=/root/.cache/pip "$venv/bin/python" -m pip install --disable-pip-version-check "$@"
fi
"""

#: argv: run WORKDIR COMMAND...  (each command is the user's shell text, run as /bin/sh -c COMMAND)
COMMANDS = """set -e
mkdir -p "$1"; cd "$1"; shift
for command in "$@"; do
  printf '+ %s\\n' "$command"
  /bin/sh -c "$command"
done
"""

#: argv: conda PREFIX SPEC_JSON INSTALLER_PY  (py-rattler in a cache-mounted tools venv)
CONDA = f"""set -eu
prefix="$1"; spec="$2"; installer="$3"; venv="$4"
tools={TOOLS_DIR}/rattler
if [ ! -x "$tools/bin/python" ]; then
  "$venv/bin/python" -m venv "$tools"
  "$tools/bin/python" -m pip install -q --disable-pip-version-check py-rattler pyyaml
fi
"$tools/bin/python" "$installer" "$spec" "$prefix"
"""
