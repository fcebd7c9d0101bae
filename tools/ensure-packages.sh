#!/usr/bin/env bash
# Makes sure the Debian packages listed in tools/debian-packages.txt for a purpose are installed.
#   tools/ensure-packages.sh build                   packages for the demo
#   tools/ensure-packages.sh test                    packages for the demo and the tests
#   tools/ensure-packages.sh test --without clang    the same but for the named packages (repeatable), e.g. a
#                                                    g++-only test run (tools/test.sh) needs no clang
#   tools/ensure-packages.sh mpich                   packages for the tests and MPICH (tools/test-mpich.sh)
# As root, missing packages are installed with apt-get. Otherwise the exact `sudo apt-get install`
# line is printed and the script exits with status 1. Off Debian (no dpkg-query) it checks nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { echo "usage: $0 build|test|mpich [--without PACKAGE]..." >&2; exit 2; }
purpose=${1:-test}
case "$purpose" in
  build) wanted="build" ;;
  test) wanted="build test" ;;
  mpich) wanted="build test mpich" ;;
  *) usage ;;
esac
(( $# > 0 )) && shift
without=()
while (( $# > 0 )); do
  [[ "$1" == --without && $# -ge 2 ]] || usage
  without+=("$2")
  shift 2
done

packages=()
while read -r name role _; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  for skip in "${without[@]}"; do
    [[ "$name" == "$skip" ]] && continue 2
  done
  for w in $wanted; do
    if [[ "$role" == "$w" ]]; then packages+=("$name"); fi
  done
done < "$here/debian-packages.txt"

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "diffuse: not a Debian system; make sure these are installed: ${packages[*]}" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if (( ${#missing[@]} == 0 )); then
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  echo "diffuse: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "diffuse: missing Debian packages. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
