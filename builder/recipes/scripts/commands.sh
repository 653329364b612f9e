set -e
mkdir -p "$1"; cd "$1"; shift
for command in "$@"; do
  printf '+ %s\n' "$command"
  /bin/sh -c "$command"
done
