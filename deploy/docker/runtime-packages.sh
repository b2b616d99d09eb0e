#!/bin/sh
# runtime-packages.sh BINARY: the Debian packages that ship the shared
# libraries BINARY links (ldd), one per line, sorted. The coffer image installs
# exactly these in its runtime stage. Debian 12's dpkg database still names
# some libraries under /lib and others under /usr/lib (merged /usr), so both
# spellings are asked.
set -eu
ldd "$1" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
  dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null \
    || { echo "runtime-packages: no package ships $lib" >&2; exit 1; }
done | cut -d: -f1 | sort -u
