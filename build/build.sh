#!/bin/sh
# Release binaries of synco for Linux x86_64, into dist/:
#   dist/synco-source-linux-x86_64  server: PyInstaller one-file, stripped, with the loader and C
#                                   library it runs with, behind a small static launcher
#                                   (build/launcher.c): no glibc needed on the host
#   dist/synco-linux-x86_64         client: the same recipe
#   dist/SHA256SUMS                 what install.sh checks
# Installs its build tools into build/work/venv (git-ignored) from PyPI on the first run.
# PYTHON picks the interpreter the binaries embed (default: .venv/bin/python, else python3); it
# must be built with --enable-shared (python.org builds, pyenv with PYTHON_CONFIGURE_OPTS,
# Debian's python3 with libpython3.X installed).
# Needs binutils, ldd, musl-gcc (musl-tools: the launcher is 0.1 MB with musl, 0.7 MB with glibc)
# and liblzma's static library and headers (liblzma-dev).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$ROOT/build/work
VENV=$WORK/venv
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
say() { echo "build.sh: $*" >&2; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) PLATFORM=linux-x86_64 ;;
  *) say "error: release binaries are built on Linux x86_64 only, not $(uname -s) $(uname -m)"; exit 1 ;;
esac
for tool in objcopy strip ldd; do
  command -v "$tool" >/dev/null || { say "error: $tool is missing (apt-get install binutils libc-bin)"; exit 1; }
done
LZMA_A=
for f in /usr/lib/*/liblzma.a /usr/lib64/liblzma.a /usr/lib/liblzma.a; do
  if [ -f "$f" ]; then LZMA_A=$f; break; fi
done
if [ -z "$LZMA_A" ] || [ ! -f /usr/include/lzma.h ]; then
  say "error: liblzma.a or lzma.h is missing (apt-get install liblzma-dev)"; exit 1
fi
command -v musl-gcc >/dev/null || {
  say "error: musl-gcc is missing (apt-get install musl-tools): the launcher is linked with musl"; exit 1; }

# 1. the build venv: pinned tools plus the project's dependencies from pyproject.toml
stamp=$( (cat build/requirements.txt pyproject.toml; "$PYTHON" -VV) | sha256sum | cut -c1-16)
if [ ! -f "$VENV/.stamp-$stamp" ]; then
  say "creating the build venv (tools from build/requirements.txt)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r build/requirements.txt
  "$VENV/bin/python" - >"$WORK/deps.txt" <<'PY'
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$WORK/deps.txt"
  touch "$VENV/.stamp-$stamp"
fi
PATH=$VENV/bin:$PATH
export PATH

# 2. PyInstaller one-file binaries (the source comes from this checkout, see pathex in the specs);
#    the module archive at zlib level 9 like the rest (PyInstaller's default there is 6)
PYINSTALLER_ZLIB_COMPRESSION_LEVEL=9
export PYINSTALLER_ZLIB_COMPRESSION_LEVEL
for spec in synco-source synco; do
  say "pyinstaller build/$spec.spec"
  "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$WORK/pyi" --workpath "$WORK/pyi-work" "build/$spec.spec"
done

# 3. staticx --no-compress finds the system libraries the program and its archive need, gives the
#    program placeholders for its interpreter and RPATH, and adds its NSS fix
mkdir -p "$WORK/staticx"
for name in synco-source synco; do
  say "staticx $name"
  "$VENV/bin/staticx" --strip --no-compress "$WORK/pyi/$name" "$WORK/staticx/$name"
done

# 4. the launcher (static; musl's headers do not include the host's, so lzma.h is copied beside
#    it), then launcher + payload: libraries xz-compressed, the program as it is
mkdir -p "$WORK/launcher/include" dist
cp -R /usr/include/lzma.h /usr/include/lzma "$WORK/launcher/include/"
say "musl-gcc build/launcher.c"
musl-gcc -std=c11 -Os -Wall -Wextra -static -I"$WORK/launcher/include" \
  -o "$WORK/launcher/launcher" build/launcher.c "$LZMA_A"
strip "$WORK/launcher/launcher"
for name in synco-source synco; do
  say "pack $name -> dist/$name-$PLATFORM"
  "$VENV/bin/python" build/pack.py "$WORK/launcher/launcher" "$WORK/staticx/$name" \
    "dist/$name-$PLATFORM.tmp"
  chmod 755 "dist/$name-$PLATFORM.tmp"
  mv "dist/$name-$PLATFORM.tmp" "dist/$name-$PLATFORM"
done

(cd dist && sha256sum "synco-source-$PLATFORM" "synco-$PLATFORM" >SHA256SUMS)
ls -l dist/synco-source-$PLATFORM dist/synco-$PLATFORM >&2
say "done: $("dist/synco-source-$PLATFORM" --version)"
