uv_ready() {  # PYTHON: sets $uv to a private copy of the pinned uv, checked by sha256 (fetched again when missing or wrong)
  uv_tmp=$(mktemp -d /tmp/builder-uv.XXXXXX)
  if "$1" -I -S -c "$uv_check_py" "$tools" "$uv_tmp" @UV_SHA256@; then uv="$uv_tmp/uv"; return 0; fi
  if ! "$1" -I -S -c "$uv_boot_py" "$tools" @UV_VERSION@; then uv_pip_fallback; fi
  if ! "$1" -I -S -c "$uv_check_py" "$tools" "$uv_tmp" @UV_SHA256@; then
    echo "uv: no uv @UV_VERSION@ matching its pinned sha256 could be fetched for this platform" >&2
    return 1
  fi
  uv="$uv_tmp/uv"
}
