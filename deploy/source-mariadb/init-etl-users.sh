# Sourced (not executed) by the MariaDB image entrypoint on the demo server's first start, which gives
# it docker_process_sql. Creates the ETL's read-only user and the generator's admin user, like the
# local stack does.
if [ -z "${SOURCE_PASSWORD:-}" ] || [ -z "${SOURCE_ADMIN_PASSWORD:-}" ]; then
    echo >&2 "source-mariadb: set SOURCE_PASSWORD and SOURCE_ADMIN_PASSWORD in .env for the demo profile"
    exit 1
fi
docker_process_sql --database=mysql <<-EOSQL
    CREATE USER IF NOT EXISTS '${SOURCE_USER}'@'%' IDENTIFIED BY '${SOURCE_PASSWORD}';
    GRANT SELECT, SHOW VIEW ON \`${MARIADB_DATABASE}\`.* TO '${SOURCE_USER}'@'%';
    CREATE USER IF NOT EXISTS '${SOURCE_ADMIN_USER}'@'%' IDENTIFIED BY '${SOURCE_ADMIN_PASSWORD}';
    GRANT ALL PRIVILEGES ON *.* TO '${SOURCE_ADMIN_USER}'@'%';
    FLUSH PRIVILEGES;
EOSQL
