# The pip step with build secrets: first the index settings the secrets it recognises hold, exported for
# the installer of this step only (see the README, "Build secrets"):
#   /run/secrets/pip_index_url, /run/secrets/pip_extra_index_url: index URLs (user:password may be in them);
#   /run/secrets/netrc: a netrc file (unless builder's own index credentials are mounted already).
# uv reads UV_INDEX_URL / UV_EXTRA_INDEX_URL and pip reads PIP_INDEX_URL / PIP_EXTRA_INDEX_URL; uv's own
# bootstrap keeps asking the default index, where uv itself is.
builder_secret_value() {  # NAME: the secret's text without whitespace; fails when it was not given
  [ -s "/run/secrets/$1" ] || return 1
  tr -d '[:space:]' < "/run/secrets/$1"
}
if builder_index=$(builder_secret_value pip_index_url); then
  if [ "$1" = uv ]; then export UV_INDEX_URL="$builder_index"; else export PIP_INDEX_URL="$builder_index"; fi
fi
if builder_index=$(builder_secret_value pip_extra_index_url); then
  if [ "$1" = uv ]; then export UV_EXTRA_INDEX_URL="$builder_index"; else export PIP_EXTRA_INDEX_URL="$builder_index"; fi
fi
unset builder_index
if [ -z "${NETRC:-}" ] && [ -s /run/secrets/netrc ]; then export NETRC=/run/secrets/netrc; fi
@PIP_MAIN@
