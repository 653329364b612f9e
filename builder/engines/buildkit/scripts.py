"""The fixed shell scripts the install steps run (constants: user data only ever arrives as argv or files).

Every script is run as ``/bin/sh -c SCRIPT NAME ARG...``: package names,
versions and paths are positional parameters (``"$@"``), so no user text is
ever parsed by a shell.  The only shell text from the user is
``pre_build_commands`` / ``shell_commands``, each run as ``/bin/sh -c <command>``.
"""

from __future__ import annotations

#: Where the optional extra CA bundle is mounted (a secret mount: never in a layer).
CA_PATH = "/run/secrets/builder-ca"
#: Tools the build needs but the image must not keep (uv, py-rattler) live in cache mounts here,
#: one folder per pinned version (an upgraded pin never runs the old tool left in the mount).
TOOLS_DIR = "/opt/builder-tools"
#: The tool versions the steps install from PyPI (pinned: every machine builds with the same tools;
#: a change here changes the steps' LLB, so bump their revisions in builder/plan/recipes.py).
UV_VERSION = "0.13.9"
RATTLER_VERSION = "0.28.0"
PYYAML_VERSION = "6.0.4"


def package_file(name: str) -> bytes:
    """A file shipped beside this module (``uv_boot.py``, ``conda_installer.py``), as bytes."""
    from importlib import resources

    return resources.files("builder.engines.buildkit").joinpath(name).read_bytes()


def _uv_boot_py() -> str:
    text = package_file("uv_boot.py").decode("utf-8")
    if "'" in text:  # the scripts carry it in single quotes
        raise RuntimeError("uv_boot.py must not contain a single quote")
    return text


#: ``python -I -S -c UV_BOOT_PY TOOLS VERSION``: uv from its wheel in ~0.5 s instead of pip's ~2.8 s
#: (see :mod:`builder.engines.buildkit.uv_boot`); exit 1 means "use pip".
UV_BOOT_PY = _uv_boot_py()
_UV_BOOT = f"uv_boot_py='{UV_BOOT_PY}'\n"

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
    + _UV_BOOT
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
tools={TOOLS_DIR}/uv/{UV_VERSION}
if [ ! -x "$tools/bin/uv" ] && ! python3 -I -S -c "$uv_boot_py" "$tools" {UV_VERSION}; then
  python3 -m venv /tmp/builder-uv-boot
  /tmp/builder-uv-boot/bin/python -m pip install -q --disable-pip-version-check --target "$tools" uv=={UV_VERSION}
  rm -rf /tmp/builder-uv-boot
fi
UV_PYTHON_INSTALL_DIR=/opt/python "$tools/bin/uv" python install "$v"
UV_PYTHON_INSTALL_DIR=/opt/python "$tools/bin/uv" venv --seed --python "$v" "$venv"
"""
)

#: argv: apt [--no-install-recommends] PACKAGE...
APT = "set -eu\n" + _APT_FUNCS + 'apt_install "$@"\n'

#: Run by the venv's interpreter as ``python -I -S -c KNOWN_PY RECORD_DIR REQUIREMENTS``: one
#: process does the offline-first bookkeeping (each command a shell runs costs a few ms here).
#: The record key is the interpreter's Python version, platform and libc, which decide the wheels
#: it can use (``cpython-311-linux-x86_64-glibc2.36``): the pip step's inputs do not carry the
#: Python version, and the interpreter knows itself exactly (a uv-installed Python too).  It makes
#: a private work directory under RECORD_DIR holding ``known`` (requirement lines the record has),
#: ``new`` (the others) and ``record`` (what the record becomes if the install succeeds: older
#: lines first, so the cap drops them first), then prints ``TOTAL KNOWN KEY WORKDIR``.  Lines are
#: compared as bytes, whole; blank and comment lines are not requirements.  Exit 1: no record.
KNOWN_PY = """import os, sys, sysconfig
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION") or "other"
except (ValueError, OSError):
    libc = "other"
key = "%s-%s-%s" % (sys.implementation.cache_tag, sysconfig.get_platform(), libc.replace(" ", ""))
if not key or key.startswith(".") or "/" in key or len(key.split()) != 1:
    sys.exit(1)
record_dir, req = sys.argv[1], sys.argv[2]
def lines_of(path):
    try:
        with open(path, "rb") as handle:
            found = handle.read().split(b"\\n")
    except FileNotFoundError:
        return []
    if found and not found[-1]:
        found.pop()
    return found
def write(path, lines):
    with open(path, "wb") as handle:
        handle.write(b"".join(line + b"\\n" for line in lines))
wanted = [ln for ln in lines_of(req) if ln.strip() and not ln.lstrip().startswith(b"#")]
record = lines_of(os.path.join(record_dir, key + ".txt"))
recorded, current = set(record), set(wanted)
os.makedirs(record_dir, exist_ok=True)
while True:
    work = os.path.join(record_dir, ".run." + os.urandom(6).hex())
    try:
        os.mkdir(work, 0o700)
        break
    except FileExistsError:
        pass
known = [ln for ln in wanted if ln in recorded]
write(os.path.join(work, "known"), known)
write(os.path.join(work, "new"), [ln for ln in wanted if ln not in recorded])
write(os.path.join(work, "record"), ([ln for ln in record if ln not in current] + wanted)[-5000:])
print(len(wanted), len(known), key, work)
"""

#: uv's ``offline-first`` mode (every line pinned).  ``RECORD_DIR/<key>.txt`` in the uv cache
#: mount lists the requirement lines installed successfully before with this cache and Python.
#: Those lines are installed with ``--offline`` (no index requests).  New lines are meanwhile
#: resolved with the index and brought into the cache (a throwaway ``--target`` install of
#: symlinks), so the index round trips overlap the copying of the known wheels; then one
#: ``--offline`` install of the whole file makes the venv satisfy the whole set.  Whatever fails
#: offline (cache pruned, a new line the index could not give) falls back to the plain online
#: install, which shows uv's own error if there is one.  The mount is ``shared`` between
#: concurrent builds: the record is replaced by rename from a unique temporary directory, so a
#: reader sees the old or the new file, never a partial one (a lost concurrent update only makes a
#: later build resolve those lines online again).  POSIX sh, rm and mv only, besides KNOWN_PY.
_UV_FUNCS = r"""
uv_install() { "$tools/bin/uv" pip install --python "$venv/bin/python" "$@"; }
install_file() {  # FILE [uv options]: -r FILE, with the constraints when there are any
  file="$1"; shift
  if [ -s "$cons" ]; then uv_install "$@" -r "$file" -c "$cons"; else uv_install "$@" -r "$file"; fi
}
record_setup() {  # RECORD_DIR: sets $work, $rec, $total and $known, or fails (then: plain online install)
  out=$("$venv/bin/python" -I -S -c "$known_py" "$1" "$req" 2>/dev/null) || return 1
  total=${out%% *}; out=${out#* }; known=${out%% *}; out=${out#* }; key=${out%% *}; work=${out#* }
  case "$total$known" in ""|*[!0-9]*) return 1;; esac
  case "$key" in ""|*/*|.*) return 1;; esac
  case "$work" in "$1"/.run.*) ;; *) return 1;; esac
  trap 'rm -rf "$work"' EXIT
  trap 'exit 1' HUP INT TERM
  rec="$1/$key.txt"
}
known_first() {
  new=$((total - known))
  if [ "$known" -eq 0 ]; then
    echo "uv: $total of $total requirements are new here: resolving them with the index"
    install_file "$req"
  else
    fetch=""
    if [ "$new" -gt 0 ]; then  # meanwhile the index brings the new lines into the cache (symlinks: no copies)
      install_file "$work/new" --target "$work/fetch" --link-mode symlink > "$work/fetch.log" 2>&1 &
      fetch=$!
    fi
    if out=$(install_file "$work/known" --offline 2>&1); then
      printf '%s\n' "$out"
      echo "uv: $known of $total requirements installed from the cache (offline)"
      if [ -n "$fetch" ]; then
        echo "uv: $new of $total requirements are new here: resolving them with the index"
        wait "$fetch" || true
        if out=$(install_file "$req" --offline 2>&1); then printf '%s\n' "$out"
        else
          echo "uv: the cache still misses something the new requirements need: resolving all $total with the index"
          install_file "$req"
        fi
      fi
    else
      if [ -n "$fetch" ]; then wait "$fetch" || true; fi
      echo "uv: the cache no longer has what the $known known requirements need (pruned?): resolving all $total with the index"
      install_file "$req"
    fi
  fi
  mv -f "$work/record" "$rec"
}
"""

#: argv: pip INSTALLER VENV REQUIREMENTS CONSTRAINTS MODE [RECORD_DIR]  (the marker is the step's
#: first output line, and nothing else prints it).  MODE ``offline-first`` with RECORD_DIR: see
#: ``_UV_FUNCS``; ``online``: one plain install.
PIP = (
    """set -eu
installer="$1"; venv="$2"; req="$3"; cons="$4"; mode="$5"; record_dir="${6:-}"
if [ "$installer" = uv ]; then echo UV_PIP_INSTALL_STARTED; else echo PIP_INSTALL_STARTED; fi
"""
    + f"tools={TOOLS_DIR}/uv/{UV_VERSION}\nuv_version={UV_VERSION}\nuv_pin=uv=={UV_VERSION}\nknown_py='{KNOWN_PY}'\n"
    + _UV_BOOT
    + _UV_FUNCS
    + """set -- -r "$req"
if [ -s "$cons" ]; then set -- "$@" -c "$cons"; fi
if [ "$installer" = uv ]; then
  if [ ! -x "$tools/bin/uv" ] && ! "$venv/bin/python" -I -S -c "$uv_boot_py" "$tools" "$uv_version"; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --target "$tools" "$uv_pin"
  fi
  export VIRTUAL_ENV="$venv" UV_CACHE_DIR=/root/.cache/uv UV_LINK_MODE=copy
  if [ "$mode" = offline-first ] && [ -n "$record_dir" ] && record_setup "$record_dir"; then
    known_first
  else
    uv_install "$@"
  fi
else
  PIP_CACHE_DIR=/root/.cache/pip "$venv/bin/python" -m pip install --disable-pip-version-check "$@"
fi
"""
)

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
pyv=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
tools={TOOLS_DIR}/rattler/{RATTLER_VERSION}-py$pyv  # a venv belongs to the Python that made it
if [ ! -x "$tools/bin/python" ]; then
  "$venv/bin/python" -m venv "$tools"
  "$tools/bin/python" -m pip install -q --disable-pip-version-check py-rattler=={RATTLER_VERSION} pyyaml=={PYYAML_VERSION}
fi
"$tools/bin/python" "$installer" "$spec" "$prefix"
"""
