# Sourced by the scripts: where PostgreSQL's server binaries are, and a
# workspace every component user can reach (root's home is not searchable by
# the postgres user the quickstart's server runs as).
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
export SONDE_PG_BINDIR=${SONDE_PG_BINDIR:-$pgbin}
if [ -z "${SONDE_HOME:-}" ] && [ "$(id -u)" -eq 0 ]; then
  export SONDE_HOME=/var/tmp/sonde
fi
# sonde-sim (the reference server recipes run) from the build tree the scripts use.
if [ -d "$PWD/${dir:-build}/src/sim" ]; then export PATH="$PWD/${dir:-build}/src/sim:$PATH"; fi
# The Chroma server's runner (its Debian 13 root), for recipes/services/chroma.yaml.
export SONDE_CHROMA_LOCAL=${SONDE_CHROMA_LOCAL:-$PWD/scripts/chroma-local.sh}
