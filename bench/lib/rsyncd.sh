# Sourced by the benchmarks: rsync's daemon on 127.0.0.1 serving a directory read-only, as module "pub".
#
#   start_rsyncd DIR ROOT [EXCLUDES]   writes DIR/rsyncd.conf, starts the daemon on port $port + 1 (after
#                                      start_nginx) and sets $rport. Stop it with: kill "$(cat DIR/rsyncd.pid)"
start_rsyncd() {
  local dir=$1 root=$2 excludes=${3:-}
  rport=$((port + 1))
  cat >"$dir/rsyncd.conf" <<EOF2
port = $rport
address = 127.0.0.1
use chroot = no
pid file = $dir/rsyncd.pid
[pub]
path = $root
read only = yes
$( [ -n "$excludes" ] && echo "exclude = $excludes" )
EOF2
  rm -f "$dir/rsyncd.pid"
  rsync --daemon --config="$dir/rsyncd.conf"
}
