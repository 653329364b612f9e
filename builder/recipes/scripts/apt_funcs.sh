apt_opts=""
if [ -f @CA_PATH@ ]; then apt_opts="-o Acquire::https::CAInfo=@CA_PATH@"; fi
apt_install() {
  rm -f /etc/apt/apt.conf.d/docker-clean
  apt-get $apt_opts update -q
  DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q "$@"
}
