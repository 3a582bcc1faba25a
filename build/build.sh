#!/bin/sh
# Release binaries of synco for Linux x86_64, into dist/:
#   dist/synco-source-linux-x86_64  server: PyInstaller one-file, stripped, wrapped by staticx
#                                   (carries its own loader and C library: no glibc needed)
#   dist/synco-linux-x86_64         client: the same recipe
#   dist/SHA256SUMS                 what install.sh checks
# Installs its build tools into build/work/venv (git-ignored) from PyPI on the first run.
# PYTHON picks the interpreter the binaries embed (default: .venv/bin/python, else python3); it
# must be built with --enable-shared (python.org builds, pyenv with PYTHON_CONFIGURE_OPTS,
# Debian's python3 with libpython3.X installed).
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

# 2. PyInstaller one-file binaries (the source comes from this checkout, see pathex in the specs)
for spec in synco-source synco; do
  say "pyinstaller build/$spec.spec"
  "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$WORK/pyi" --workpath "$WORK/pyi-work" "build/$spec.spec"
done

# 3. staticx: bundle the loader and the C library; no compression (the PyInstaller archive is
#    compressed already; xz would save 2.5 MB and cost 0.3 s on every start)
mkdir -p dist
for name in synco-source synco; do
  say "staticx $name -> dist/$name-$PLATFORM"
  "$VENV/bin/staticx" --strip --no-compress "$WORK/pyi/$name" "dist/$name-$PLATFORM.tmp"
  chmod 755 "dist/$name-$PLATFORM.tmp"
  mv "dist/$name-$PLATFORM.tmp" "dist/$name-$PLATFORM"
done

(cd dist && sha256sum "synco-source-$PLATFORM" "synco-$PLATFORM" >SHA256SUMS)
ls -l dist/synco-source-$PLATFORM dist/synco-$PLATFORM >&2
say "done: $("dist/synco-source-$PLATFORM" --version)"
