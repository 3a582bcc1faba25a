#!/bin/sh
# Install synco-source (the server side of synco) without root, then run it:
#
#   curl -fsSL https://github.com/synco-dev/synco/releases/latest/download/install.sh | sh
#   curl -fsSL .../install.sh | sh -s - v1.2.3 serve --all
#
# Arguments: an optional version first (v1.2.3 or 1.2.3; default: the latest release), then
# everything to pass to synco-source (default: --version).
# Environment:
#   SYNCO_DOWNLOAD_URL  where releases live: <url>/<version>/<file> and <url>/latest/<file>
#                       (default https://github.com/synco-dev/synco/releases/download; the
#                       latest release is then .../releases/latest/download/<file>)
#   SYNCO_INSTALL_DIR   install here (default ~/.local/bin, else the current folder)
# It downloads synco-source-<os>-<arch> and SHA256SUMS with curl or wget, refuses a file whose
# SHA-256 differs, and never asks for root.
set -u

DEFAULT_URL=https://github.com/synco-dev/synco/releases/download
PROG=synco-source

say() { printf 'synco install: %s\n' "$*" >&2; }
die() { printf 'synco install: error: %s\n' "$1" >&2; [ -n "${2:-}" ] && printf 'synco install: hint: %s\n' "$2" >&2; exit 1; }

platform() {
  os=$(uname -s 2>/dev/null) || os=unknown
  arch=$(uname -m 2>/dev/null) || arch=unknown
  case "$os" in
    Linux) os=linux ;;
    Darwin) die "unsupported platform: macOS ($arch); the synco-source binary is for Linux servers" \
                "on a Mac use Python: pipx install synco (it has synco-source too)" ;;
    *) die "unsupported platform: $os $arch; synco-source binaries exist for Linux x86_64" \
           "elsewhere use Python 3.11+: pipx install synco" ;;
  esac
  case "$arch" in
    x86_64 | amd64) arch=x86_64 ;;
    *) die "unsupported platform: Linux $arch; synco-source binaries exist for Linux x86_64" \
           "on this machine use Python 3.11+: pipx install synco" ;;
  esac
  echo "$os-$arch"
}

# fetch URL FILE: download to FILE; 0 ok, 4 not found (404), anything else another failure
fetch() {
  if command -v curl >/dev/null 2>&1; then
    code=$(curl -sSL --retry 2 -o "$2" -w '%{http_code}' "$1") || { rm -f "$2"; return 1; }
    case "$code" in 2??) return 0 ;; 404) rm -f "$2"; return 4 ;; *) rm -f "$2"; say "HTTP $code from $1"; return 1 ;; esac
  elif command -v wget >/dev/null 2>&1; then
    out=$(LC_ALL=C wget -q -S -O "$2" "$1" 2>&1) && return 0
    rm -f "$2"
    case "$out" in *" 404 "*) return 4 ;; esac
    say "wget failed for $1: $(printf '%s' "$out" | head -n 1)"
    return 1
  else
    die "neither curl nor wget is installed; one of them is needed to download synco-source" \
        "install curl (e.g. apt-get install curl), or download $1 yourself"
  fi
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 "$1" | sed 's/.*= *//'
  else die "no sha256sum, shasum or openssl to check the download with" "install coreutils"
  fi
}

writable_dir() {  # mkdir -p and test by writing: root-owned folders and read-only mounts fail
  mkdir -p "$1" 2>/dev/null || return 1
  probe="$1/.synco-install.$$"
  (: >"$probe") 2>/dev/null || return 1
  rm -f "$probe"
}

main() {
  version=latest
  case "${1:-}" in
    v[0-9]* | [0-9]*.*) version=v${1#v}; shift ;;
  esac
  [ $# -gt 0 ] || set -- --version

  target=$(platform) || exit 1
  file=$PROG-$target
  base=${SYNCO_DOWNLOAD_URL:-$DEFAULT_URL}
  base=${base%/}
  if [ "$version" = latest ] && [ "$base" = "$DEFAULT_URL" ]; then
    where=${base%/download}/latest/download  # GitHub's address of the latest release
  else
    where=$base/$version
  fi

  if [ -n "${SYNCO_INSTALL_DIR:-}" ]; then
    dir=$SYNCO_INSTALL_DIR
    writable_dir "$dir" || die "no write permission in $dir (SYNCO_INSTALL_DIR)" \
                               "choose a folder you can write, e.g. SYNCO_INSTALL_DIR=\$HOME/bin"
  elif [ -n "${HOME:-}" ] && writable_dir "$HOME/.local/bin"; then
    dir=$HOME/.local/bin
  elif writable_dir "$(pwd)"; then
    dir=$(pwd)
  else
    die "no write permission in ${HOME:-\$HOME}/.local/bin nor in the current folder $(pwd)" \
        "run it from a folder you can write, or set SYNCO_INSTALL_DIR to one"
  fi
  dir=$(cd "$dir" && pwd)

  part=$dir/.$file.download.$$
  sums=$dir/.SHA256SUMS.download.$$
  trap 'rm -f "$part" "$sums"' EXIT
  trap 'exit 130' INT TERM
  say "downloading $where/$file"
  fetch "$where/$file" "$part"
  case $? in
    0) ;;
    4) die "$PROG $version is not published for $target (HTTP 404 at $where/$file)" \
           "check the version (e.g. v1.2.3) on the releases page, or leave it out for the latest" ;;
    *) die "download of $where/$file failed" "check the network and SYNCO_DOWNLOAD_URL ($base)" ;;
  esac
  fetch "$where/SHA256SUMS" "$sums" || die "cannot download $where/SHA256SUMS to check the file"
  want=$(awk -v f="$file" '$2 == f || $2 == "*" f { print $1; exit }' "$sums")
  [ -n "$want" ] || die "SHA256SUMS at $where lists no $file; refusing an unchecked file"
  got=$(sha256 "$part")
  if [ "$got" != "$want" ]; then
    die "checksum mismatch for $file: expected $want, got $got; nothing was installed" \
        "the download is damaged or was changed; try again, and report it if it persists"
  fi
  if ! { chmod 755 "$part" && mv -f "$part" "$dir/$PROG"; }; then
    die "cannot write $dir/$PROG" "check the permissions of $dir, or set SYNCO_INSTALL_DIR"
  fi
  say "installed $dir/$PROG ($version, SHA-256 checked)"
  case ":${PATH:-}:" in *":$dir:"*) ;; *) say "note: $dir is not on PATH; run it as $dir/$PROG" ;; esac

  trap - EXIT INT TERM
  rm -f "$sums"
  say "running: $PROG $*"
  exec "$dir/$PROG" "$@"
}

main "$@"
