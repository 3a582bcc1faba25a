#!/usr/bin/env bash
# The synco demo: a small shop database and its uploads folder play "production"; synco-source
# publishes them, synco downloads them into a second database and folder, as on a laptop.
# Every line is marked with the side that printed it. The demo checks its own result: it exits
# non-zero when the copy differs from production (tables or files).
# Needs a MySQL/MariaDB server where $DEMO_MYSQL may create databases
# (default mysql://root@127.0.0.1:3306, as on the development machines).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SYNCO_BIN:-$(cd "$here/../.." && pwd)/.venv/bin}
server=${DEMO_MYSQL:-mysql://root@127.0.0.1:3306}
prod=${DEMO_PREFIX:-synco_demo}_prod
local=${DEMO_PREFIX:-synco_demo}_local
work=$(mktemp -d)
mysql_cmd=(mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -u root)
command -v mariadb >/dev/null || mysql_cmd[0]=mysql
# the laptop's chunk cache and state of this run only: the demo shows a first download
export XDG_CACHE_HOME="$work/cache" XDG_STATE_HOME="$work/state"

cleanup() {
  [ -n "${source_pid:-}" ] && kill "$source_pid" 2>/dev/null && wait "$source_pid" 2>/dev/null
  "${mysql_cmd[@]}" -e "DROP DATABASE IF EXISTS $prod; DROP DATABASE IF EXISTS $local; DROP DATABASE IF EXISTS ${local}__synco_prev" || true
  rm -rf "$work"
}
trap cleanup EXIT
server_says() { sed -u 's/^/  server | /'; }
laptop_says() { sed -u 's/^/  laptop | /'; }

echo "== 1. production: database $prod and folder uploads/"
"${mysql_cmd[@]}" -e "DROP DATABASE IF EXISTS $prod; CREATE DATABASE $prod CHARACTER SET utf8mb4"
"${mysql_cmd[@]}" "$prod" < "$here/shop.sql"
cp -r "$here/uploads" "$work/prod-uploads"

echo "== 2. on the server: synco-source serve (it prints one line: the token)"
SYNCO_DB_URL="$server/$prod" "$bin/synco-source" serve \
  --files "uploads=$work/prod-uploads" --listen 127.0.0.1:0 2> >(server_says) >"$work/token" &
source_pid=$!
for _ in $(seq 100); do [ -s "$work/token" ] && break; sleep 0.1; done
[ -s "$work/token" ] || { echo "demo: synco-source printed no token" >&2; exit 1; }
server_says <"$work/token"

echo "== 3. on the laptop: synco download (into $local and local-uploads/)"
"${mysql_cmd[@]}" -e "DROP DATABASE IF EXISTS $local; DROP DATABASE IF EXISTS ${local}__synco_prev"
token=$(sed 's/^synco download //' "$work/token")
SYNCO_DB_URL="$server/$local" "$bin/synco" download "$token" \
  --files-dir "uploads=$work/local-uploads" --yes 2>&1 | laptop_says
# the server's line for this download comes when it is complete: give it a moment
sleep 0.3

echo "== 4. compare"
tables="customer, product, \`order\`, order_line"
a=$("${mysql_cmd[@]}" -N "$prod" -e "CHECKSUM TABLE $tables" | awk '{print $2}' | tr '\n' ' ')
b=$("${mysql_cmd[@]}" -N "$local" -e "CHECKSUM TABLE $tables" | awk '{print $2}' | tr '\n' ' ')
echo "$a <- $prod"
echo "$b <- $local"
status=0
if [ "$a" = "$b" ]; then echo "tables: identical"; else echo "demo: the tables differ" >&2; status=1; fi
if diff -r "$work/prod-uploads" "$work/local-uploads"; then echo "uploads: identical"
else echo "demo: the uploads differ" >&2; status=1; fi
[ $status = 0 ] && echo "demo: the local copy matches production"
echo "(the laptop's 'done' line and the server's 'download by' line count the same bytes: what"
echo " went over the wire, compressed and encrypted; 'to fetch' counts the data before compression)"
exit $status
