"""The dbt profile Cosmos renders for its dbt tasks: from the `analytics_warehouse` Airflow connection.

Host, port, database, user, password and `sslmode` come from the connection as Cosmos' Postgres
mapping reads them, and the CA file from its `sslrootcert` extra; the password reaches dbt as an
environment variable, never in the rendered profiles.yml. The CLI's dbt reads the same connection
through `load_settings()` and `dbt_dental_models/profiles.yml` (etl_pipeline.dbt_runner), with the same
defaults as here: `sslmode` prefer, `require` on the prod target.
"""

from __future__ import annotations

from typing import Any

from cosmos import ProfileConfig
from cosmos.profiles import PostgresUserPasswordProfileMapping

from etl_pipeline.connections import WAREHOUSE_CONN_ID
from etl_pipeline.dbt_runner import DBT_PROFILE

# as profiles.yml has them for both targets
PROFILE_ARGS = {"schema": "analytics", "threads": 4, "connect_timeout": 10, "keepalives_idle": 60}


class WarehouseProfileMapping(PostgresUserPasswordProfileMapping):
    """Cosmos' Postgres user/password mapping, plus the CA file and the target's default `sslmode`."""

    airflow_param_mapping = {
        **PostgresUserPasswordProfileMapping.airflow_param_mapping,
        "sslrootcert": "extra.sslrootcert",
    }

    def __init__(self, *args: Any, default_sslmode: str = "prefer", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_sslmode = default_sslmode

    @property
    def profile(self) -> dict[str, Any | None]:
        return {"sslmode": self.default_sslmode, **super().profile}


def warehouse_profile(target_name: str) -> ProfileConfig:
    """The ProfileConfig of the Cosmos task group: profile `dbt_dental_models`, target `target_name`."""
    mapping = WarehouseProfileMapping(
        conn_id=WAREHOUSE_CONN_ID,
        profile_args=PROFILE_ARGS,
        default_sslmode="require" if target_name == "prod" else "prefer",
    )
    return ProfileConfig(profile_name=DBT_PROFILE, target_name=target_name, profile_mapping=mapping)
