# Sourced by the benchmarks: one nginx on 127.0.0.1 serving a directory, counting bytes sent.
#
#   start_nginx DIR ROOT     writes DIR/nginx.conf, starts nginx serving ROOT on a random port, sets
#                            $port; each request's $bytes_sent goes to DIR/access.log, one per line.
#                            The caller stops it with: kill "$(cat DIR/nginx.pid)"
start_nginx() {
  local dir=$1 root=$2
  port=$((20000 + RANDOM % 20000))
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF2
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 512; }
http {
  log_format wire '\$bytes_sent';
  access_log $dir/access.log wire;
  client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  server { listen 127.0.0.1:$port; root $root; }
}
EOF2
  nginx -c "$dir/nginx.conf"
}
