#!/usr/bin/env bash
# The quickstart: installs what is needed, builds sonde, and benchmarks a real
# PostgreSQL with pgbench at 1, 4 and 8 clients on the local backend.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
. scripts/env.sh
exec build/sonde run recipes/benchmarks/quickstart.yaml "$@"
