#!/bin/sh
# The watch tests' stand-in for a compiler, run in the component's workdir: records the
# build in ../build.log, then copies the prebuilt ../wasm/<version>.wasm named in
# src/version to ../out/<name>.wasm and the version itself to ../out/<name>.txt.
# A version of "broken" fails the build.
set -eu
name="$1"
echo "$name" >> ../build.log
version="$(cat src/version)"
if [ "$version" = broken ]; then
  echo "error: $name's src/version says broken" >&2
  exit 3
fi
mkdir -p ../out
cp "../wasm/$version.wasm" "../out/$name.wasm"
printf '%s' "$version" > "../out/$name.txt"
