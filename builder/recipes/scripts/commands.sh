set -eu
# argv: WORKDIR SCRIPT: run the user's commands (one generated bash script) in WORKDIR.
workdir="$1"; script="$2"
if ! command -v bash >/dev/null 2>&1; then
  echo "commands: the image has no bash: installing it"
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bash
    rm -rf /var/lib/apt/lists/*
  elif command -v apk >/dev/null 2>&1; then apk add --no-cache bash
  elif command -v microdnf >/dev/null 2>&1; then microdnf install -y bash
  elif command -v dnf >/dev/null 2>&1; then dnf install -y bash
  elif command -v yum >/dev/null 2>&1; then yum install -y bash
  else
    echo "commands: no bash and no package manager to install it with: use a base image with bash" >&2
    exit 1
  fi
fi
mkdir -p "$workdir"
cd "$workdir"
exec bash "$script"
