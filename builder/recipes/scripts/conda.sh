set -eu
prefix="$1"; spec="$2"; installer="$3"; venv="$4"
# py-rattler comes from the tools run, checked by sha256 and read-only here
"$venv/bin/python" -I "$installer" "$spec" "$prefix" @TOOLS_DIR@/rattler
