#!/usr/bin/env bash
# Installs the servers the one-box stack and the tests run privately:
# MariaDB and memcached from Debian's packages, HAProxy for the multi-AZ
# fleet (make fleet), and promtool (in Debian's prometheus package, without
# its recommends: about 20 MB) for the alerting rules' test in
# deploy/monitoring. Does nothing when they are already there. Needs root (or sudo) the first time.
#
#   deploy/install-deps.sh bench   also nginx and Varnish, which make bench
#                                  compares edgecache with; if they cannot be
#                                  installed, make bench runs without them
set -euo pipefail
if [ "${1:-}" = bench ]; then
  extra=()
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || extra+=(nginx-light)
  command -v varnishd >/dev/null 2>&1 || [ -x /usr/sbin/varnishd ] || extra+=(varnish)
  if [ ${#extra[@]} -gt 0 ]; then
    echo "installing ${extra[*]} for the comparison in make bench" >&2
    if [ "$(id -u)" -eq 0 ]; then s=""; elif command -v sudo >/dev/null 2>&1; then s=sudo; else s=none; fi
    if [ "$s" = none ] || ! { $s apt-get update -qq && DEBIAN_FRONTEND=noninteractive $s apt-get install -y -qq "${extra[@]}" >/dev/null; }; then
      echo "could not install ${extra[*]}: make bench runs without them" >&2
    fi
  fi
fi
need=()
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
command -v memcached >/dev/null 2>&1 || need+=(memcached)
# /usr/sbin is not on every user's PATH.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
# Debian's package also brings a Prometheus server, started as a service
# on :9090 where systemd runs; the tests use only promtool.
promtool=()
command -v promtool >/dev/null 2>&1 || promtool=(prometheus)
[ ${#need[@]} -eq 0 ] && [ ${#promtool[@]} -eq 0 ] && exit 0
echo "installing ${need[*]} ${promtool[*]} (Debian packages)" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
    echo "need root to install ${need[*]} ${promtool[*]}: run 'apt-get install -y ${need[*]} ${promtool[*]}' as root" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
[ ${#need[@]} -eq 0 ] || $sudo apt-get install -y -qq "${need[@]}" >/dev/null
[ ${#promtool[@]} -eq 0 ] || $sudo apt-get install -y -qq --no-install-recommends "${promtool[@]}" >/dev/null
