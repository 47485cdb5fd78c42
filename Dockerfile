# Production image: the official Airflow image plus this project, its locked dependencies, the DAGs and
# the dbt project with a manifest.json built at image build time (Cosmos renders from it; nothing runs
# dbt while DAGs are parsed). Built by docker-compose.yml; see deploy/README.md.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# mysqlclient has no manylinux wheel: if uv.lock pins a version the base image lacks, it is compiled here.
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config default-libmysqlclient-dev \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
USER airflow

ENV ETL_HOME=/opt/airflow/project \
    ETL_CONFIG_DIR=/opt/airflow/etl-config \
    DBT_DOCS_DIR=/opt/airflow/dbt-docs \
    DBT_PROFILES_DIR=/opt/airflow/project/dbt_dental_models \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False \
    DO_NOT_TRACK=1 \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/project/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/project/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
WORKDIR /opt/airflow/project

# Third-party dependencies exactly as locked in uv.lock. This layer changes only when the lock does.
# Pinning apache-airflow to the base image's version makes a lock/base mismatch fail here, loudly.
ARG UV_VERSION=0.13.9
COPY --chown=airflow:0 pyproject.toml uv.lock ./
RUN python -m pip install --no-cache-dir "uv==${UV_VERSION}" \
 && uv export --frozen --no-emit-project --no-hashes --format requirements-txt -o /tmp/requirements.txt \
 && uv pip install --no-cache "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The project itself (no dependency resolution: everything it needs came from the lock above).
COPY --chown=airflow:0 README.md ./
COPY --chown=airflow:0 etl_pipeline ./etl_pipeline
RUN uv pip install --no-cache --no-deps .

COPY --chown=airflow:0 airflow/dags ./airflow/dags
COPY --chown=airflow:0 airflow/plugins ./airflow/plugins
COPY --chown=airflow:0 dbt_dental_models ./dbt_dental_models
COPY --chown=airflow:0 deploy/seed-demo-source.sh ./deploy/seed-demo-source.sh

# dbt parse renders the profile but never connects: the TARGET_* values here are placeholders that live
# only in this build step. The build fails if no manifest comes out.
ARG DBT_PARSE_TARGET=prod
RUN cd dbt_dental_models \
 && env TARGET_HOST=parse-only TARGET_PORT=5432 TARGET_DATABASE=analytics TARGET_USER=parse-only \
        TARGET_PASSWORD=parse-only TARGET_SSLMODE=disable \
    dbt parse --profiles-dir . --target "${DBT_PARSE_TARGET}" \
 && test -s target/manifest.json

# Mount points of the named volumes: a fresh named volume starts as a copy of the image's directory,
# so the ownership set here (airflow:0) carries over, and etl-config starts with the repo's config files.
RUN mkdir -p /opt/airflow/etl-config /opt/airflow/dbt-docs /opt/airflow/certs \
 && if [ -d etl_pipeline/config ]; then cp -a etl_pipeline/config/. /opt/airflow/etl-config/; fi
