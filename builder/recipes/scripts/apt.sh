set -eu

@APT_FUNCS@
apt_install "$@"
