#!/bin/sh
# The system packages lisod's features need, in one list: `npm start` calls it with `run`,
# `npm test` and .ci/run with `test`. Installs only what is missing (a dpkg-query check first,
# so a second run is a fast no-op that never calls apt), with apt-get (through sudo when not
# root). It is never run by npm install: installing lisod from a tarball touches no system.
#
#   sh scripts/system-deps.sh [run|build|test|bench|all] [--dry-run]
#
# LISOD_SKIP_SYSTEM_DEPS=1 skips it (you manage the packages yourself).
set -u

group=${1:-run}
dry_run=${2:-}

# Needed to run `npm start`: the dev certificate (openssl) and the Flaskr CGI app.
run_pkgs="openssl ca-certificates python3 python3-flask"
run_why="openssl: the development certificate; python3-flask: Flaskr, the CGI app at /cgi/"
# Needed to build the native addon from a checkout (a packed tarball carries a prebuilt one).
build_pkgs="g++ make python3 libnghttp2-dev libbrotli-dev"
build_why="g++, make, python3: node-gyp builds the native addon; libnghttp2-dev, libbrotli-dev: its HTTP/2 and Brotli headers (the libraries are Node's)"
# Needed by the test suite, beyond the above.
test_pkgs="chromium libnss3-tools python3-cryptography curl systemd logrotate util-linux php-fpm php-cgi python3-h2 nghttp2-client libnghttp2-dev clang libclang-rt-14-dev libssl-dev libuv1-dev zlib1g-dev"
test_why="chromium: Flaskr in a real browser; libnss3-tools: the README's dev-CA commands (certutil); python3-cryptography: test CAs, chains, CRLs; \
curl, systemd (systemd-analyze), logrotate, util-linux (prlimit, setsid): service tests; \
php-fpm, php-cgi: FastCGI peers; python3-h2, nghttp2-client, libnghttp2-dev: HTTP/2 client and headers; \
clang, libclang-rt-14-dev, libssl-dev, libuv1-dev, zlib1g-dev: the libFuzzer targets npm test runs (npm run fuzz too)"
# Needed by `npm run bench`.
bench_pkgs="wrk nghttp2-client nginx lighttpd lighttpd-mod-openssl lighttpd-mod-deflate"
bench_why="wrk, nghttp2-client (h2load), nginx, lighttpd, lighttpd-mod-openssl, lighttpd-mod-deflate: benchmark clients and peers"

case "$group" in
  # npm start from a checkout builds the addon too (npm install leaves it when headers are missing).
  run) pkgs="$run_pkgs $build_pkgs"; why="$run_why; $build_why" ;;
  build) pkgs="$build_pkgs"; why="$build_why" ;;
  test) pkgs="$run_pkgs $build_pkgs $test_pkgs"; why="$run_why; $build_why; $test_why" ;;
  bench) pkgs="$run_pkgs $build_pkgs $bench_pkgs"; why="$run_why; $build_why; $bench_why" ;;
  all) pkgs="$run_pkgs $build_pkgs $test_pkgs $bench_pkgs"; why="$run_why; $build_why; $test_why; $bench_why" ;;
  *) echo "usage: sh scripts/system-deps.sh [run|build|test|bench|all] [--dry-run]" >&2; exit 2 ;;
esac
case "$dry_run" in ''|--dry-run) ;; *) echo "system-deps: unknown option '$dry_run'" >&2; exit 2 ;; esac

say() { echo "system-deps: $*" >&2; }

if [ "${LISOD_SKIP_SYSTEM_DEPS:-}" = 1 ]; then exit 0; fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  say "not a Debian/Ubuntu system; install the equivalents of these packages yourself:"
  say "  $pkgs"
  say "  ($why)"
  say "then set LISOD_SKIP_SYSTEM_DEPS=1 to skip this check"
  exit 0
fi

# One dpkg-query for the whole list (packages dpkg never heard of are simply not printed).
installed=" $(dpkg-query -W -f='${db:Status-Status}:${Package} ' $pkgs 2>/dev/null | tr ' ' '\n' |
  sed -n 's/^installed://p' | tr '\n' ' ')"
missing=""
for p in $pkgs; do
  case "$installed $missing " in *" $p "*) continue ;; esac
  missing="$missing $p"
done
missing=${missing# }

# Ubuntu's chromium deb is a shim that installs a snap, which a test browser cannot drive
# (snap confinement): say what to do instead of installing it.
os_release=${LISOD_OS_RELEASE:-/etc/os-release} # overridable for tests
if [ -r "$os_release" ] && grep -qi "^ID=ubuntu" "$os_release"; then
  case " $missing " in *" chromium "*)
    missing=$(echo " $missing " | sed 's/ chromium / /; s/^ *//; s/ *$//')
    say "Ubuntu: the chromium package is a snap shim the browser test cannot use; install Google"
    say "Chrome's .deb (https://www.google.com/chrome/) and run the tests with"
    say "LISOD_CHROMIUM=/usr/bin/google-chrome, or the browser test is skipped" ;;
  esac
fi

[ -n "$missing" ] || exit 0

if [ "$dry_run" = --dry-run ]; then
  say "would install for '$group': $missing"
  exec apt-get install -s -y --no-install-recommends $missing # simulation: changes nothing
fi
say "installing missing Debian packages for '$group': $missing"
say "why: $why"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    say "not root and no sudo: as root run   apt-get install -y $missing"
    say "(or set LISOD_SKIP_SYSTEM_DEPS=1 to go on without them)"
    exit 1
  fi
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet: update once when the install fails.
if ! $SUDO apt-get install -y -q --no-install-recommends $missing; then
  $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends $missing || {
    say "could not install: $missing"
    say "install them yourself (apt-get install $missing), or set LISOD_SKIP_SYSTEM_DEPS=1 to go on without them"
    exit 1
  }
fi
