#!/usr/bin/env bash
# Compares edgecache with nginx proxy_cache and Varnish (malloc storage) on
# this machine, in one run: the same 1 KB post, served from cache, the same
# wrk load. Server side gets CPU 0, the load generator CPU 1. The ceiling is
# a fasthttp server answering a fixed 1 KB body (deploy/compare/ceiling):
# the summary gives every target as a ratio of it and of nginx, from the
# same run (the machine is shared: compare ratios, not absolute numbers).
# A second ceiling answers edgecache's own hit, byte for byte: what is left
# between the two ceilings is what the answer edgecache must send costs
# (Age, Via, Cache-Status, the origin's fields, the post's JSON), what is
# left between that one and edgecache is edgecache's own work.
#
# Needs the one-box stack running in another terminal, with the proxy in a
# process of its own as it is deployed (`make run RUN_FLAGS=-proxy-process`;
# plain `make run` works too and measures the proxy sharing its process
# with the origin and the invalidator), and root the first time (installs
# varnish, nginx and wrk from Debian's packages).
#
#   deploy/compare/compare.sh [duration] [connections] [rounds]
#
# rounds > 1 measures every target that many times, interleaved, so that a
# noisy neighbour hurts all of them alike; the summary is the mean of the
# last two rounds (the first warms everything up). EXTRA="name=host:port ..." adds
# targets (another proxy instance, say one with PROXY_L1_BYTES=0).
# PROXY, ORIGIN, NGINX_ADDR, VARNISH_ADDR, CEILING_ADDR and ANSWER_ADDR
# (the second ceiling) move the addresses; PIN is the pgrep -f pattern of
# the stack's processes to pin to CPU 0: by default bin/proxy and
# memcached, or onebox and memcached when no bin/proxy runs (on a shared
# machine, make it match only your own stack).
set -euo pipefail
duration=${1:-15s}
conns=${2:-64}
rounds=${3:-1}
proxy=${PROXY:-127.0.0.1:8080}
origin=${ORIGIN:-127.0.0.1:8081}
nginx_addr=${NGINX_ADDR:-127.0.0.1:8091}
varnish_addr=${VARNISH_ADDR:-127.0.0.1:8092}
ceiling_addr=${CEILING_ADDR:-127.0.0.1:8093}
answer_addr=${ANSWER_ADDR:-127.0.0.1:8094}

need=()
command -v varnishd >/dev/null || need+=(varnish)
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "need root to install ${need[*]}" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/edgecache-compare-XXXX)
chmod 755 "$work" # nginx and Varnish workers run as unprivileged users
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# A user and a post with a 1 KB body, created on the origin.
body=$(head -c 1024 /dev/zero | tr '\0' 'x')
user=$(curl -sf -X POST "http://$origin/v1/users" -H 'Content-Type: application/json' \
  -d "{\"name\":\"bench\",\"email\":\"compare-$RANDOM$RANDOM@example.com\"}")
uid=$(sed -E 's/.*"id":([0-9]+).*/\1/' <<<"$user")
token=$(sed -E 's/.*"token":"([^"]+)".*/\1/' <<<"$user")
post=$(curl -sf -X POST "http://$origin/v1/users/$uid/posts" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $token" -d "{\"body\":\"$body\"}")
pid=$(sed -E 's/^\{"id":([0-9]+).*/\1/' <<<"$post")
path="/v1/posts/$pid"

mkdir -p "$work/nginx/cache"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  proxy_cache_path $work/nginx/cache keys_zone=edge:16m;
  upstream origin { server $origin; keepalive 64; }
  server {
    listen $nginx_addr;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      proxy_cache_lock on;
      proxy_cache_valid 200 60s;
    }
  }
}
CONF
taskset -c 0 nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)

cat >"$work/default.vcl" <<CONF
vcl 4.1;
backend origin { .host = "${origin%:*}"; .port = "${origin#*:}"; }
CONF
taskset -c 0 varnishd -F -n "$work/varnish" -a "$varnish_addr" -f "$work/default.vcl" -s malloc,256m \
  >"$work/varnish.log" 2>&1 &
pids+=($!)

here=$(cd "$(dirname "$0")" && pwd)
(cd "$here/../.." && go build -o "$work/ceiling" ./deploy/compare/ceiling)
taskset -c 0 "$work/ceiling" -listen "$ceiling_addr" &
pids+=($!)
for _ in 1 2; do curl -sf -o /dev/null "http://$proxy$path"; done # stored, then an L1 hit
curl -sf -i -o "$work/answer.http" "http://$proxy$path"
taskset -c 0 "$work/ceiling" -listen "$answer_addr" -response "$work/answer.http" &
pids+=($!)

# Our proxy, and the memcached it uses, on CPU 0 too.
pin=${PIN:-$(pgrep -f '^bin/proxy' >/dev/null && echo 'bin/proxy|memcached -u root' || echo 'onebox|memcached -u root')}
for p in $(pgrep -f "$pin" || true); do taskset -a -p -c 0 "$p" >/dev/null 2>&1 || true; done

wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null "http://$1$path" && return 0; sleep 0.1; done; echo "$1 not answering" >&2; return 1; }
printf '%-22s %12s %10s %10s %10s\n' target "requests/s" p50 p99 errors
targets=("edgecache=$proxy" "nginx=$nginx_addr" "varnish=$varnish_addr" "origin(no cache)=$origin" "ceiling=$ceiling_addr"
  "ceiling(same answer)=$answer_addr")
for extra in ${EXTRA:-}; do targets+=("$extra"); done
for round in $(seq "$rounds"); do
for target in "${targets[@]}"; do
  name=${target%%=*}; addr=${target#*=}
  wait_up "$addr"
  for _ in 1 2 3; do curl -s -o /dev/null "http://$addr$path"; done
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"$duration" --latency "http://$addr$path")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")
  printf '%-22s %12s %10s %10s %10s\n' "$name" "$rps" "$p50" "$p99" "${errs:-0}"
  echo "$round ${name// /_} $rps $p50 $p99" >>"$work/results"
done
done
# Mean of the last two rounds (or of the only one), latencies in ms, and
# each target as a ratio of the ceiling and of nginx.
echo
echo "summary (mean of the last $([ "$rounds" -gt 1 ] && echo 2 || echo 1) round(s)):"
awk -v first=$((rounds > 1 ? rounds - 1 : 1)) '
  function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
  $1 >= first { n[$2]++; rps[$2] += $3; p50[$2] += ms($4); p99[$2] += ms($5); if (!($2 in seen)) { seen[$2] = 1; order[++k] = $2 } }
  END {
    printf "%-22s %12s %10s %10s %12s %10s\n", "target", "requests/s", "p50 ms", "p99 ms", "x ceiling", "x nginx"
    for (i = 1; i <= k; i++) { t = order[i]; r = rps[t] / n[t]
      printf "%-22s %12.0f %10.2f %10.2f %12.2f %10.2f\n", t, r, p50[t] / n[t], p99[t] / n[t],
        ("ceiling" in rps) ? r / (rps["ceiling"] / n["ceiling"]) : 0, ("nginx" in rps) ? r / (rps["nginx"] / n["nginx"]) : 0 }
  }' "$work/results"
echo "cache status of each (one request):"
for a in "$proxy" "$nginx_addr" "$varnish_addr"; do
  # grep finds nothing when a target sends none of these: not a failure.
  curl -si "http://$a$path" | { grep -iE '^(cache-status|x-cache-status|x-cache|age|x-varnish):' || true; } | tr -d '\r' | sed "s|^|  $a  |"
done
