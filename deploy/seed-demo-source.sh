#!/usr/bin/env bash
# demo profile (source-seed service): fill the demo MariaDB with synthetic OpenDental data, once.
# `docker compose up` starts one-shot services again, so an already seeded database is left alone.
set -euo pipefail
: "${SOURCE_ADMIN_PASSWORD:?set SOURCE_ADMIN_PASSWORD in .env for the demo profile}"

if python - <<'PY'
import sys

from etl_pipeline.db import connect_source
from etl_pipeline.settings import load_settings

admin = load_settings().source_admin
conn = connect_source(admin)
try:
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s", (admin.database,))
    sys.exit(0 if cur.fetchone()[0] else 1)
finally:
    conn.close()
PY
then
    echo "source-seed: ${SOURCE_DATABASE:-opendental} already has tables; not seeding again"
    exit 0
fi
echo "source-seed: generating synthetic OpenDental data (scale ${DEMO_SCALE:-0.05})"
exec python -m etl_pipeline.cli synth --scale "${DEMO_SCALE:-0.05}"
