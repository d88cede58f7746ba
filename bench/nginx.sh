# bench/nginx.sh — sourced by the bench scripts that load nginx: nginx_start WORK ROOT
# starts one nginx worker pinned to CPU 1, serving ROOT on 127.0.0.1 with keep-alive and
# no access log, from WORK (its config, pid file, temp files); it sets NGINX_PORT.
# nginx_stop WORK stops it. Installs nginx-light, wrk and python3 when missing (root).
nginx_deps() {
  local p
  for p in nginx-light wrk python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
  done
}
nginx_start() {
  local work=$1 root=$2
  NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/tmp"
  cat >"$work/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 10;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  server { listen 127.0.0.1:$NGINX_PORT; root $root; }
}
CONF
  nginx -c "$work/nginx.conf" -p "$work"
  sleep 0.3
}
nginx_stop() {
  [ -f "$1/nginx.pid" ] && kill "$(cat "$1/nginx.pid")" 2>/dev/null
  sleep 0.2
}
