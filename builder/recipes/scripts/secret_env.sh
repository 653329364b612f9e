set -eu
# argv: SECRET_PATH VAR... -- COMMAND...
# Runs COMMAND with every VAR set to SECRET_PATH when the secret was given (the file exists);
# without it COMMAND runs as it is.  Used where a secret mount cannot set variables itself.
path="$1"; shift
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  if [ -f "$path" ]; then export "$1=$path"; fi
  shift
done
[ "$#" -gt 0 ] && shift
exec "$@"
