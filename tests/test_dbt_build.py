"""dbt build on the synthetic source loaded by the real loader: green, every model tested, and the
behaviours around it (incremental fact, deletes, bad input: a missing raw table, a stale source)."""

from __future__ import annotations

import pytest

from etl_pipeline.dbt_runner import DbtError, run_dbt

pytest_plugins = ["dbt_support"]

MARTS = (
    "dim_patient",
    "dim_provider",
    "dim_procedure_code",
    "dim_clinic",
    "dim_insurance_plan",
    "dim_date",
    "fct_procedure",
    "fct_appointment",
    "fct_claim",
    "fct_payment",
    "fct_adjustment",
    "fct_daily_production",
    "fct_daily_collections",
    "fct_ar_aging",
    "fct_appointment_kpis",
    "fct_recall_compliance",
    "fct_new_patients_monthly",
    "fct_claim_aging",
    "fct_insurance_paid_vs_billed",
    "fct_provider_performance",
)


def test_build_is_green_and_tests_every_model(marts):
    results = marts.run_results["results"]
    failed = [
        r["unique_id"]
        for r in results
        if not r["unique_id"].startswith("exposure.") and r["status"] not in ("success", "pass")
    ]
    assert not failed, f"dbt build had failures: {failed[:10]}"
    models = {r["unique_id"].split(".")[-1] for r in results if r["unique_id"].startswith("model.")}
    assert set(MARTS) <= models
    tested = {r["unique_id"] for r in results if r["unique_id"].startswith("test.")}
    assert len(tested) > 150
    for model in models:  # every model carries at least one test
        assert any(f".{model}" in t or f"_{model}_" in t for t in tested), f"{model} has no test"


def test_marts_hold_data(marts):
    for mart in MARTS:
        (n,) = marts.pg(f'select count(*) from marts."{mart}"')[0]
        assert n > 0, f"marts.{mart} is empty"


def test_staging_cleans_opendental_sentinels(marts):
    # the source really has the sentinels ...
    (sentinels,) = marts.pg("select count(*) from raw.patient where birthdate = '0001-01-01'")[0]
    (zero_fks,) = marts.pg("select count(*) from raw.appointment where provhyg = 0")[0]
    assert sentinels > 0 and zero_fks > 0
    # ... and staging turns them into nulls; no direct identifiers survive
    assert marts.pg("""select count(*) from staging.stg_opendental__patient
                       where birth_date <= '1900-01-01'""") == [(0,)]
    assert marts.pg("select count(*) from staging.stg_opendental__appointment where hygienist_id = 0") == [
        (0,)
    ]
    columns = {
        c
        for (c,) in marts.pg("""select column_name from information_schema.columns
                                         where table_schema in ('staging', 'marts')""")
    }
    assert not columns & {"ssn", "subscriberid", "subscriber_id", "password"}


def test_incremental_procedure_fact_merges_changes_and_drops_deletes(marts):
    # live rows only: raw also keeps rows an earlier source had, marked deleted
    (proc_id, fee) = marts.pg("""select procnum, procfee from raw.procedurelog
                                 where procstatus = 2 and _deleted_at is null order by procnum limit 1""")[0]
    (gone_id,) = marts.pg(
        "select procnum from raw.procedurelog where _deleted_at is null order by procnum desc limit 1"
    )[0]
    # a claimproc the fact counts as insurance paid: a payment status, on a claim, of a live procedure
    (claimproc_id, paid_proc_id) = marts.pg(
        """select claimprocnum, procnum from raw.claimproc
           where status in (1, 4) and claimnum <> 0 and procnum <> 0 and procnum <> %s
             and _deleted_at is null
             and procnum in (select procnum from raw.procedurelog where _deleted_at is null)
           order by claimprocnum limit 1""",
        (gone_id,),
    )[0]
    (paid_before,) = marts.pg(
        "select insurance_paid from marts.fct_procedure where procedure_id = %s", (paid_proc_id,)
    )[0]
    # what the loader does: rewrite changed rows with a new _loaded_at, mark deleted ones in _deleted_at
    marts.pg(
        """
        update raw.procedurelog set procfee = procfee + 1000, _loaded_at = now() where procnum = %s;
        update raw.procedurelog set _deleted_at = now() where procnum = %s;
        update raw.claimproc set inspayamt = inspayamt + 50, _loaded_at = now() where claimprocnum = %s""",
        (proc_id, gone_id, claimproc_id),
    )
    try:
        run_dbt(["run", "--select", "fct_procedure"], settings=marts.settings)
        assert marts.pg(
            "select procedure_fee from marts.fct_procedure where procedure_id = %s", (proc_id,)
        ) == [(round(fee + 1000, 2),)]
        assert marts.pg("select count(*) from marts.fct_procedure where procedure_id = %s", (gone_id,)) == [
            (0,)
        ]
        assert marts.pg(
            "select insurance_paid from marts.fct_procedure where procedure_id = %s", (paid_proc_id,)
        ) == [(paid_before + 50,)]
    finally:
        marts.pg(
            """
            update raw.procedurelog set procfee = %s, _loaded_at = now() where procnum = %s;
            update raw.procedurelog set _deleted_at = null where procnum = %s;
            update raw.claimproc set inspayamt = inspayamt - 50, _loaded_at = now() where claimprocnum = %s""",
            (fee, proc_id, gone_id, claimproc_id),
        )
    # a row restored at the source (delete mark cleared, old _loaded_at) comes back on the next build
    run_dbt(["run", "--select", "fct_procedure"], settings=marts.settings)
    assert marts.pg("select count(*) from marts.fct_procedure where procedure_id = %s", (gone_id,)) == [(1,)]
    assert marts.pg("select procedure_fee from marts.fct_procedure where procedure_id = %s", (proc_id,)) == [
        (round(fee, 2),)
    ]


def test_missing_raw_table_fails_naming_the_source(marts):
    marts.pg("alter table raw.recalltype rename to recalltype_away")
    try:
        with pytest.raises(DbtError) as err:
            run_dbt(["build", "--select", "stg_opendental__recalltype+"], settings=marts.settings)
        # models that do not read the missing table still build (a leaf table: rebuilding a view would
        # drop the views downstream of it, dbt-postgres replaces views with DROP ... CASCADE)
        run_dbt(["run", "--select", "fct_new_patients_monthly"], settings=marts.settings)
    finally:
        marts.pg("alter table raw.recalltype_away rename to recalltype")
    message = str(err.value)
    assert "missing raw table: source opendental.recalltype (table raw.recalltype)" in message
    assert "etl_pipeline.cli run" in message and "\n" not in message


def test_freshness_follows_the_load_state_not_the_rows(marts):
    """Fresh means the table's load succeeded lately, however old its rows: a rarely edited table loaded
    tonight is fresh, a table whose loads have failed for three days is stale."""
    ok = run_dbt(["source", "freshness"], settings=marts.settings, check=False)
    assert ok.ok, ok.output[-2000:]
    # definition: every row written three days ago and not rewritten since, but loaded tonight
    marts.pg("update raw.definition set _loaded_at = _loaded_at - interval '3 days'")
    # provider: its last successful load three days ago, tonight's failed
    marts.pg(
        "update etl.load_state set last_success_at = last_success_at - interval '3 days',"
        " last_status = 'failed' where table_name = 'provider'"
    )
    try:
        with pytest.raises(DbtError) as err:
            run_dbt(["source", "freshness"], settings=marts.settings)
    finally:
        marts.pg("update raw.definition set _loaded_at = _loaded_at + interval '3 days'")
        marts.pg(
            "update etl.load_state set last_success_at = last_success_at + interval '3 days',"
            " last_status = 'success' where table_name = 'provider'"
        )
    message = str(err.value)
    assert "opendental.provider" in message
    assert "opendental.definition" not in message and "opendental.patient" not in message


def test_a_model_reading_a_vanished_column_fails_naming_it_and_the_others_build(marts):
    """After an upgrade renamed or dropped a column, raw keeps it (marked by the loader's comment); the
    staging model that reads it must fail with its name and the column's, not build on stale NULLs."""
    marts.pg("comment on column raw.procedurelog.toothnum is 'vanished at the source on 2026-12-01'")
    try:
        with pytest.raises(DbtError) as err:
            run_dbt(
                ["run", "--select", "stg_opendental__procedurelog", "stg_opendental__patient"],
                settings=marts.settings,
            )
        passed = run_dbt(["run", "--select", "stg_opendental__patient"], settings=marts.settings)
    finally:
        marts.pg("comment on column raw.procedurelog.toothnum is null")
    message = str(err.value)
    assert "model stg_opendental__procedurelog reads column toothnum of raw.procedurelog" in message
    assert "no longer exists at the source" in message
    assert "view model staging.stg_opendental__patient" not in message  # built in the same run
    assert passed.ok


def test_payments_and_splits_are_compared_only_where_both_loads_read_them(marts):
    """fct_payment's split total test skips a payment whose payment or splits are stamped after the start
    of either table's last read window (the clinic wrote while the night loaded the two tables one after
    the other); the same disagreement stamped before it fails the test."""
    (horizon,) = marts.pg(
        "select min(coalesce(l.window_lower, l.window_upper, s.cursor_value)::timestamp) from ("
        " select distinct on (table_name) table_name, window_lower, window_upper from etl.load_runs"
        " where status = 'success' and table_name in ('payment', 'paysplit')"
        " order by table_name, finished_at desc) l join etl.load_state s using (table_name)"
    )[0]
    assert horizon is not None
    (split_id, stamp, amount) = marts.pg(
        "select splitnum, secdatetedit, splitamt from raw.paysplit where _deleted_at is null"
        " and secdatetedit < %s and splitamt > 0 order by splitnum limit 1",
        (horizon,),
    )[0]
    select = ["build", "--select", "fct_payment"]
    try:
        marts.pg(
            "update raw.paysplit set splitamt = splitamt + 1, secdatetedit = %s + interval '1 minute'"
            " where splitnum = %s",
            (horizon, split_id),
        )
        in_flight = run_dbt(select, settings=marts.settings, check=False)
        marts.pg("update raw.paysplit set secdatetedit = %s where splitnum = %s", (stamp, split_id))
        settled = run_dbt(select, settings=marts.settings, check=False)
    finally:
        marts.pg(
            "update raw.paysplit set splitamt = %s, secdatetedit = %s where splitnum = %s",
            (amount, stamp, split_id),
        )
        run_dbt(select, settings=marts.settings, check=False)
    assert in_flight.ok, in_flight.output[-3000:]
    assert not settled.ok and "FAIL 1 expression_is_true_fct_payment" in settled.output, settled.output[
        -3000:
    ]


def test_docs_are_published_again_only_when_the_manifest_or_the_catalog_changed(marts, tmp_path):
    """The nightly's `docs_generate` skips `dbt docs generate` when the published site was built from
    the same manifest and catalog; a comment on a raw table (the catalog) or a changed description (the
    manifest) publishes it again."""
    import json

    from etl_pipeline.dbt_runner import DBT_MANIFEST
    from etl_pipeline.dbt_steps import DOCS_FILES, docs_fingerprint, generate_docs

    site = tmp_path / "docs"
    assert generate_docs(marts.settings, site) == {"docs_dir": str(site), "regenerated": True}
    published = {name: (site / name).stat().st_mtime_ns for name in DOCS_FILES}
    assert generate_docs(marts.settings, site) == {"docs_dir": str(site), "regenerated": False}
    assert {name: (site / name).stat().st_mtime_ns for name in DOCS_FILES} == published

    [(comment,)] = marts.pg("select obj_description('raw.definition'::regclass, 'pg_class')")
    marts.pg("comment on table raw.definition is 'docs fingerprint test'")
    try:
        assert generate_docs(marts.settings, site)["regenerated"] is True
        assert "docs fingerprint test" in (site / "catalog.json").read_text()
    finally:
        marts.pg("comment on table raw.definition is %s", (comment,))
    assert generate_docs(marts.settings, site)["regenerated"] is True  # the comment as it was

    manifest = json.loads(DBT_MANIFEST.read_text())
    node = next(n for n in manifest["nodes"].values() if n["resource_type"] == "model")
    node["description"] += " (changed)"
    changed = tmp_path / "manifest.json"
    changed.write_text(json.dumps(manifest))
    assert docs_fingerprint(marts.settings, changed) != docs_fingerprint(marts.settings)
    manifest["metadata"]["generated_at"] = "2000-01-01T00:00:00Z"  # run metadata alone changes nothing
    node["description"] = node["description"].removesuffix(" (changed)")
    changed.write_text(json.dumps(manifest))
    assert docs_fingerprint(marts.settings, changed) == docs_fingerprint(marts.settings)
