#!/usr/bin/env bash
# Makes sure the Debian packages listed in tools/debian-packages.txt for a purpose are installed.
#   tools/ensure-packages.sh build    packages for the demo
#   tools/ensure-packages.sh test     packages for the demo and the tests
# As root, missing packages are installed with apt-get. Otherwise the exact `sudo apt-get install`
# line is printed and the script exits with status 1. Off Debian (no dpkg-query) it checks nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
purpose=${1:-test}
case "$purpose" in
  build) wanted="build" ;;
  test) wanted="build test" ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

packages=()
while read -r name role _; do
  [[ -z "$name" || "$name" == \#* ]] && continue
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
