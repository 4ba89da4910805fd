#!/usr/bin/env bash
# Build FerretDB v1 (MongoDB wire protocol on PostgreSQL or SQLite) from the Go module proxy into
# <repo>/.local/bin/ferretdb. Idempotent: skips when the binary exists and reports the
# pinned version.
#
# A plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` yields a binary
# that panics at start (build/version/version.txt is generated upstream and is not part of
# the module), so we build from a writable copy of the module with that file written.
set -euo pipefail

FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_VERSION=${FERRETDB_VERSION:-v1.24.2}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
LOCAL=$ROOT/.local
BIN=$LOCAL/bin/ferretdb
STAMP=$LOCAL/bin/ferretdb.version
SRC=$LOCAL/ferretdb/src
LOG=$LOCAL/log/ferretdb-build.log

say() { echo "[ferretdb] $*"; }
die() { echo "[ferretdb] ERROR: $*" >&2; exit 1; }

if [[ -x $BIN && -f $STAMP && $(cat "$STAMP") == "$FERRETDB_VERSION" ]]; then
  say "$FERRETDB_VERSION already built: ${BIN#"$ROOT"/}"
  exit 0
fi

command -v go >/dev/null || die "go not found (run deploy/local/deps.sh)"
# FerretDB v1.24.2 declares go 1.24; Go >= 1.21 fetches that toolchain from the module proxy
# by itself (GOTOOLCHAIN=auto), older Go (e.g. Debian 12's golang 1.19) cannot build it.
gov=$(go env GOVERSION 2>/dev/null || true)
if [[ $gov =~ ^go1\.([0-9]+) ]] && (( BASH_REMATCH[1] < 21 )); then
  die "$gov is too old to build FerretDB $FERRETDB_VERSION (needs Go >= 1.21); put a newer go first on PATH"
fi
mkdir -p "$LOCAL/bin" "$LOCAL/log" "$LOCAL/ferretdb"
: > "$LOG"

say "downloading $FERRETDB_MODULE@$FERRETDB_VERSION from the Go module proxy"
tmp=$(mktemp -d)   # run outside any go.mod
trap 'rm -rf "$tmp"' EXIT
json=$(cd "$tmp" && GOFLAGS='' go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" 2>>"$LOG") \
  || die "go mod download failed, see ${LOG#"$ROOT"/}"
dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
commit=$(sed -n 's/^[[:space:]]*"Hash": "\(.*\)",\{0,1\}$/\1/p' <<<"$json" | head -n1)
[[ -n $dir && -d $dir ]] || die "no module directory in 'go mod download' output, see ${LOG#"$ROOT"/}"

say "building (CGO_ENABLED=0), log: ${LOG#"$ROOT"/}"
rm -rf "$SRC"
cp -R "$dir" "$SRC"
chmod -R u+w "$SRC"
echo "$FERRETDB_VERSION" > "$SRC/build/version/version.txt"
[[ -n $commit ]] && echo "$commit" > "$SRC/build/version/commit.txt"
echo "local" > "$SRC/build/version/package.txt"

# -buildvcs=false: the copy lives inside this repo's work tree; without it Go would stamp
# this repo's commit, which FerretDB then rejects (commit.txt != vcs.revision).
( cd "$SRC" && CGO_ENABLED=0 GOFLAGS='' go build -buildvcs=false -trimpath -o "$BIN.tmp" ./cmd/ferretdb ) >>"$LOG" 2>&1 \
  || die "go build failed, see ${LOG#"$ROOT"/}"

# smoke test: the upstream version panic happens at init, so --version catches it
"$BIN.tmp" --version >>"$LOG" 2>&1 || die "built binary does not run, see ${LOG#"$ROOT"/}"
mv -f "$BIN.tmp" "$BIN"
echo "$FERRETDB_VERSION" > "$STAMP"
rm -rf "$SRC"   # the module cache keeps the source; the copy is only needed for the build
say "built ${BIN#"$ROOT"/} ($FERRETDB_VERSION)"
