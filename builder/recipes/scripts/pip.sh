set -eu
installer="$1"; venv="$2"; req="$3"; cons="$4"; mode="$5"; record_dir="${6:-}"
if [ "$installer" = uv ]; then echo UV_PIP_INSTALL_STARTED; else echo PIP_INSTALL_STARTED; fi
tools=@TOOLS_DIR@/uv/@UV_VERSION@
uv_version=@UV_VERSION@
uv_pin=uv==@UV_VERSION@
known_py='@KNOWN_PY@'
uv_boot_py='@UV_BOOT_PY@'
uv_check_py='@UV_CHECK_PY@'
uv_tmp=""
trap 'rm -rf "$uv_tmp"' EXIT

@UV_FUNCS@
@UV_READY@
uv_pip_fallback() {
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --target "$tools" "$uv_pin"
}
set -- -r "$req"
if [ -s "$cons" ]; then set -- "$@" -c "$cons"; fi
if [ "$installer" = uv ]; then
  uv_ready "$venv/bin/python"
  export VIRTUAL_ENV="$venv" UV_CACHE_DIR=/root/.cache/uv UV_LINK_MODE=copy
  if [ "$mode" = offline-first ] && [ -n "$record_dir" ] && record_setup "$record_dir"; then
    known_first
  else
    uv_install "$@"
  fi
else
  PIP_CACHE_DIR=/root/.cache/pip "$venv/bin/python" -m pip install --disable-pip-version-check "$@"
fi
