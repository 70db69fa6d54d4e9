#!/usr/bin/env bash
# Static latency while CGI scripts run: lisod and lighttpd side by side, alternating.
# Load: wrk -t1 -c16 on /cgi/ (the trivial Python script of the bench, ending in os._exit);
# probe: wrk -t1 -c1 --latency on a 1 KiB static file, for 10 s in the middle of the load.
# Servers unpinned (as deployed): a CGI start that holds an event loop shows in the probe.
# Usage: bench/static_under_cgi.sh [runs=3] [lisod main.js=dist/main.js]. Needs wrk, lighttpd.
set -euo pipefail
runs=${1:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
main=${2:-$repo/dist/main.js}
dir=$(mktemp -d /tmp/lisod-static-cgi-XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/www" "$dir/cgi"
head -c 1024 /dev/zero | tr '\0' x > "$dir/www/1k.html"
cat > "$dir/cgi/hello.cgi" <<'EOF'
#!/usr/bin/python3
import os, sys
body = b"hello from a trivial CGI script\n"
sys.stdout.buffer.write(b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
sys.stdout.flush()
os._exit(0)
EOF
chmod 755 "$dir/cgi/hello.cgi"
cat > "$dir/lisod.conf" <<EOF
http_port = 18470
bind = ["127.0.0.1"]
www = "$dir/www"
error_log = "$dir/lisod-error.log"
access_log = "$dir/lisod-access.log"
lock_file = "$dir/lisod.lock"
[cgi]
script = "$dir/cgi/hello.cgi"
max_processes = 16
EOF
cat > "$dir/lighttpd.conf" <<EOF
server.document-root = "$dir/www"
server.port = 18471
server.bind = "127.0.0.1"
server.modules = ("mod_alias", "mod_cgi", "mod_accesslog")
accesslog.filename = "$dir/lighttpd-access.log"
alias.url = ("/cgi" => "$dir/cgi/hello.cgi")
\$HTTP["url"] =~ "^/cgi(/|\$)" { cgi.assign = ("" => "") }
EOF

one() {  # $1 = lisod|lighttpd → "p50 p90 p99 probe-req/s cgi-req/s"
  local port pid
  if [ "$1" = lisod ]; then port=18470; node "$main" --config "$dir/lisod.conf" --foreground > "$dir/out" 2>&1 & pid=$!
  else port=18471; lighttpd -D -f "$dir/lighttpd.conf" > "$dir/out" 2>&1 & pid=$!; fi
  sleep 1.5
  wrk -t1 -c16 -d14s "http://127.0.0.1:$port/cgi/" > "$dir/load" &
  local load=$!
  sleep 2
  local probe
  probe=$(wrk -t1 -c1 -d10s --latency "http://127.0.0.1:$port/1k.html")
  wait $load
  kill $pid; wait $pid 2>/dev/null || true
  echo "$(echo "$probe" | awk '/ 50%/{a=$2} / 90%/{b=$2} / 99%/{c=$2} /Requests\/sec/{d=$2} END{print a, b, c, d}') $(awk '/Requests\/sec/{print $2}' "$dir/load")"
}

echo "server    p50       p90       p99       static req/s  cgi req/s"
for i in $(seq 1 "$runs"); do
  for s in lisod lighttpd; do printf '%-9s %s\n' "$s" "$(one $s | awk '{printf "%-9s %-9s %-9s %-13s %s", $1, $2, $3, $4, $5}')"; done
done
