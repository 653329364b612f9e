set -eu
prefix="$1"; spec="$2"; installer="$3"; venv="$4"
pyv=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
tools=@TOOLS_DIR@/rattler/@RATTLER_VERSION@-py$pyv  # a venv belongs to the Python that made it
if [ ! -x "$tools/bin/python" ]; then
  "$venv/bin/python" -m venv "$tools"
  "$tools/bin/python" -m pip install -q --disable-pip-version-check py-rattler==@RATTLER_VERSION@ pyyaml==@PYYAML_VERSION@
fi
"$tools/bin/python" "$installer" "$spec" "$prefix"
