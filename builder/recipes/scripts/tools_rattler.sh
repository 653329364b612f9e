set -eu
# The conda step's tools run: the only run that writes the py-rattler tools mount, and it runs no project code.
# argv: PYTHON OUT.  Keeps only py-rattler wheels whose sha256 is pinned in the mount (others are removed
# unopened), fetches a pinned wheel when none fits, and installs it into OUT (pip --require-hashes checks
# the wheel again); the step's own run imports py-rattler from OUT, read-only.
py="$1"; out="$2"
wheels=@TOOLS_DIR@/rattler/@RATTLER_VERSION@
wheel_check_py='@WHEEL_CHECK_PY@'
work=$(mktemp -d /tmp/builder-rattler.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$wheels"
"$py" -I -S -c "$wheel_check_py" "$wheels" @RATTLER_SHA256@
printf 'py-rattler==%s' @RATTLER_VERSION@ > "$work/pinned.txt"
for digest in @RATTLER_SHA256@; do printf ' --hash=sha256:%s' "$digest" >> "$work/pinned.txt"; done
echo >> "$work/pinned.txt"
pip_install() {
  "$py" -I -m pip install -q --disable-pip-version-check --no-index --find-links "$wheels" --no-deps \
    --only-binary :all: --require-hashes --target "$out" -r "$work/pinned.txt"
}
if pip_install 2>/dev/null; then
  echo "conda: py-rattler @RATTLER_VERSION@ from the tools cache (sha256 checked)"
  exit 0
fi
echo "conda: fetching py-rattler @RATTLER_VERSION@ (pinned by sha256)"
if ! "$py" -I -m pip download -q --disable-pip-version-check --no-deps --only-binary :all: --require-hashes \
    -d "$wheels" -r "$work/pinned.txt"; then
  echo "conda: no py-rattler @RATTLER_VERSION@ wheel with a pinned sha256 for this Python and platform (it needs Python >= 3.10 on Linux x86_64, aarch64, i686 or ppc64le)" >&2
  exit 1
fi
"$py" -I -S -c "$wheel_check_py" "$wheels" @RATTLER_SHA256@
pip_install
