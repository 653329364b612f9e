set -eu
# The pip step's tools run: the only run that writes the uv tools mount, and it runs no project code.
# argv: PYTHON OUT.  Leaves OUT/bin/uv, a copy of the pinned uv checked by sha256 (fetched again when
# the mount has none or a wrong one); the step's own run sees OUT read-only.
py="$1"; out="$2"
tools=@TOOLS_DIR@/uv/@UV_VERSION@
uv_boot_py='@UV_BOOT_PY@'
uv_check_py='@UV_CHECK_PY@'
uv_tmp=""
trap 'rm -rf "$uv_tmp"' EXIT
uv_pip_fallback() {
  "$py" -I -m pip install -q --disable-pip-version-check --target "$tools" uv==@UV_VERSION@
}
@UV_READY@
uv_ready "$py"
mkdir -p "$out/bin"
cp "$uv" "$out/bin/uv"
