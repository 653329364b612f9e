set -eu
installer="$1"; venv="$2"; req="$3"; cons="$4"; mode="$5"; record_dir="${6:-}"
if [ "$installer" = uv ]; then echo UV_PIP_INSTALL_STARTED; else echo PIP_INSTALL_STARTED; fi
checked=@TOOLS_DIR@/uv  # the tools run's checked uv, read-only here
known_py='@KNOWN_PY@'
uv_check_py='@UV_CHECK_PY@'
uv_tmp=""
trap 'rm -rf "$uv_tmp"' EXIT

@UV_FUNCS@
uv_checked() {  # PYTHON: sets $uv to a private copy of the checked uv, its sha256 checked again
  uv_tmp=$(mktemp -d /tmp/builder-uv.XXXXXX)
  if ! "$1" -I -S -c "$uv_check_py" --keep "$checked" "$uv_tmp" @UV_SHA256@; then
    echo "uv: the tools run left no pinned uv at $checked" >&2
    return 1
  fi
  uv="$uv_tmp/uv"
}
set -- -r "$req"
if [ -s "$cons" ]; then set -- "$@" -c "$cons"; fi
if [ "$installer" = uv ]; then
  uv_checked "$venv/bin/python"
  export VIRTUAL_ENV="$venv" UV_CACHE_DIR=/root/.cache/uv UV_LINK_MODE=copy
  if [ "$mode" = offline-first ] && [ -n "$record_dir" ] && record_setup "$record_dir"; then
    known_first
  else
    uv_install "$@"
  fi
else
  PIP_CACHE_DIR=/root/.cache/pip "$venv/bin/python" -m pip install --disable-pip-version-check "$@"
fi
