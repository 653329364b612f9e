set -eu
uv_boot_py='@UV_BOOT_PY@'
uv_check_py='@UV_CHECK_PY@'
uv_tmp=""
tools=""
trap 'rm -rf "$uv_tmp" "$tools"' EXIT

@APT_FUNCS@

v="$1"; venv="$2"
have() { command -v "$1" >/dev/null 2>&1; }
matches() { [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$v" ]; }
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
have python3 || { echo "python: no python3 to bootstrap uv with" >&2; exit 1; }
tools=$(mktemp -d /tmp/builder-uv-tools.XXXXXX)  # private: this run mounts no tools cache (it runs the image's python)
uv_pip_fallback() {
  python3 -m venv /tmp/builder-uv-boot
  /tmp/builder-uv-boot/bin/python -m pip install -q --disable-pip-version-check --target "$tools" uv==@UV_VERSION@
  rm -rf /tmp/builder-uv-boot
}
@UV_READY@
uv_ready python3
UV_PYTHON_INSTALL_DIR=/opt/python "$uv" python install "$v"
UV_PYTHON_INSTALL_DIR=/opt/python "$uv" venv --seed --python "$v" "$venv"
