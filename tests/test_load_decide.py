"""Full, incremental or skip, and why: one test per reason `decide` gives, on hand-built state (no
server). The loads themselves are pinned by test_load_incremental.py and test_load_nightly.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from test_load_support import offline_table

from etl_pipeline.load import raw
from etl_pipeline.load.decide import Decision, Mode, Reason, decide
from etl_pipeline.load.source import LiveColumn
from etl_pipeline.load.state import LoadState
from etl_pipeline.load.unchanged import SourceMark
from etl_pipeline.load.window import cursor_of

COLUMNS = {"id": "bigint(20)", "v": "int(11)", "ts": "timestamp"}
WRITTEN = datetime(2020, 1, 1, 8, 0)
CREATED = datetime(2019, 6, 1)
# the last load checked the source 10 s after its last write: an unchanged MyISAM table may be skipped
PREVIOUS_MARK = SourceMark("MyISAM", WRITTEN, WRITTEN + timedelta(seconds=10), CREATED)
UNCHANGED = SourceMark("MyISAM", WRITTEN, WRITTEN + timedelta(hours=1), CREATED)
WRITTEN_SINCE = SourceMark("MyISAM", WRITTEN + timedelta(minutes=5), WRITTEN + timedelta(hours=1), CREATED)


def state(cursor_value="2020-01-01 08:00:00", cursor_column="ts", last_status="success"):
    return LoadState("t", "t", "incremental", cursor_column, cursor_value, 50, last_status)


def raw_of(live, drop=(), **retyped):
    columns = {c.target_name: c.pg_type for c in live if c.target_name not in drop}
    return {**columns, **retyped, "_loaded_at": "timestamptz", "_deleted_at": "timestamptz"}


def decision(columns=COLUMNS, previous="default", raw="default", mark=WRITTEN_SINCE, **config_and_flags):
    flags = {k: config_and_flags.pop(k) for k in ("lacking_meta", "forced") if k in config_and_flags}
    table, live = offline_table("t", columns, **config_and_flags)
    return decide(
        table,
        cursor=cursor_of(table, {c.name.lower(): c for c in live}),
        previous=state() if previous == "default" else previous,
        raw_columns=raw_of(live) if raw == "default" else raw,
        live=live,
        mark=mark,
        previous_mark=PREVIOUS_MARK,
        **flags,
    )


def test_rows_after_the_saved_cursor_are_read_incrementally():
    assert decision() == Decision(Mode.INCREMENTAL, Reason.SAVED_CURSOR)


def test_an_incremental_load_of_an_unchanged_source_is_skipped():
    assert decision(mark=UNCHANGED) == Decision(Mode.SKIP, Reason.UNCHANGED)
    innodb = SourceMark("InnoDB", WRITTEN, WRITTEN + timedelta(hours=1), CREATED)
    assert decision(mark=innodb) == Decision(Mode.INCREMENTAL, Reason.SAVED_CURSOR)  # InnoDB forgets writes


def test_a_raw_table_lacking_the_loaders_columns_is_rebuilt_even_when_unchanged():
    got = decision(lacking_meta=["_loaded_at", "_deleted_at"], mark=UNCHANGED)
    assert got == Decision(Mode.FULL, Reason.RAW_LACKS_META_COLUMNS, "_loaded_at, _deleted_at")
    assert got.message == "raw lacked the loader's columns: _loaded_at, _deleted_at"


def test_a_table_without_primary_key_is_full_and_skipped_when_unchanged():
    assert decision(pk=(), cursor=None) == Decision(Mode.FULL, Reason.NO_PRIMARY_KEY)
    assert decision(pk=(), cursor=None, mark=UNCHANGED) == Decision(Mode.SKIP, Reason.UNCHANGED)


def test_strategy_full_is_skipped_only_when_unchanged_in_the_same_shape_after_a_success():
    full = {"strategy": "full", "cursor": None}
    assert decision(**full) == Decision(Mode.FULL, Reason.STRATEGY_FULL)
    assert decision(**full, mark=UNCHANGED) == Decision(Mode.SKIP, Reason.UNCHANGED)
    assert decision(**full, mark=UNCHANGED, forced=True) == Decision(Mode.FULL, Reason.STRATEGY_FULL)
    assert decision(**full, mark=UNCHANGED, previous=state(last_status="failed")).mode is Mode.FULL
    assert decision(**full, mark=UNCHANGED, previous=None).mode is Mode.FULL
    assert decision(**full, mark=UNCHANGED, raw=None) == Decision(Mode.FULL, Reason.STRATEGY_FULL)
    _, live = offline_table("t", COLUMNS)
    new_column = raw_of(live, drop=("v",))  # the source has a column raw does not
    assert decision(**full, mark=UNCHANGED, raw=new_column).mode is Mode.FULL


def test_a_forced_full_refresh_is_never_skipped():
    assert decision(forced=True, mark=UNCHANGED) == Decision(Mode.FULL, Reason.FORCED)


def test_the_first_load_is_full():
    assert decision(raw=None, previous=None) == Decision(Mode.FULL, Reason.FIRST_LOAD)


def test_a_table_without_cursor_is_full():
    assert decision(cursor=None) == Decision(Mode.FULL, Reason.NO_CURSOR)


def test_without_a_saved_cursor_the_load_is_full():
    assert decision(previous=None) == Decision(Mode.FULL, Reason.NO_SAVED_CURSOR)
    assert decision(previous=state(cursor_value=None)) == Decision(Mode.FULL, Reason.NO_SAVED_CURSOR)


def test_a_changed_cursor_column_is_full():
    assert decision(previous=state(cursor_column="DateTStamp")) == Decision(Mode.FULL, Reason.CURSOR_CHANGED)


def test_a_saved_cursor_of_another_kind_is_full():
    assert decision(previous=state(cursor_value="1234")) == Decision(
        Mode.FULL, Reason.SAVED_CURSOR_UNREADABLE
    )


def test_a_type_change_raw_cannot_widen_to_is_full_and_says_which_column():
    _, live = offline_table("t", COLUMNS)
    got = decision(raw=raw_of(live, v="text"))
    assert got == Decision(
        Mode.FULL, Reason.INCOMPATIBLE_TYPE_CHANGE, "column v changed from text to integer (not a widening)"
    )
    assert got.warns
    assert decision(raw=raw_of(live, v="smallint")) == Decision(
        Mode.INCREMENTAL, Reason.SAVED_CURSOR
    )  # widened


def test_a_key_column_missing_in_raw_is_full():
    _, live = offline_table("t", COLUMNS)
    assert decision(raw=raw_of(live, drop=("id",))) == Decision(Mode.FULL, Reason.KEY_NOT_IN_RAW)


def test_a_recreated_source_table_is_full_unless_its_shape_changed():
    restored = SourceMark(
        "MyISAM", WRITTEN_SINCE.update_time, WRITTEN_SINCE.checked_at, CREATED + timedelta(days=1)
    )
    got = decision(mark=restored)
    assert got == Decision(Mode.FULL, Reason.SOURCE_RECREATED) and got.warns
    # MyISAM's ALTER also makes a new CREATE_TIME: with a new column it is drift, read incrementally
    _, live = offline_table("t", COLUMNS)
    assert decision(mark=restored, raw=raw_of(live, drop=("v",))) == Decision(
        Mode.INCREMENTAL, Reason.COLUMNS_ADDED, "column v integer added"
    )


def test_reasons_are_taken_in_order():
    # no primary key comes before forced, and forced before a missing raw table
    assert decision(pk=(), cursor=None, forced=True, raw=None).reason is Reason.NO_PRIMARY_KEY
    assert decision(forced=True, raw=None).reason is Reason.FORCED
    assert decision(raw=None, previous=None, cursor=None).reason is Reason.FIRST_LOAD


def test_new_source_columns_are_filled_for_every_row_and_never_skipped():
    _, live = offline_table("t", COLUMNS)
    got = decision(raw=raw_of(live, drop=("v",)), mark=UNCHANGED)
    assert got == Decision(Mode.INCREMENTAL, Reason.COLUMNS_ADDED, "column v integer added")
    assert got.backfills and not got.warns
    assert got.message == (
        "rows after the saved cursor, and the new columns filled for every row: column v integer added"
    )
    assert not decision().backfills


def test_a_renamed_column_is_filled_like_an_added_one_with_a_warning():
    columns = {"id": "bigint(20)", "memo": "varchar(100)", "v": "int(11)", "ts": "timestamp"}
    _, live = offline_table("t", columns)
    raw = raw_of(live, drop=("memo",))
    raw = {
        "id": raw["id"],
        "note": "text",
        **{k: t for k, t in raw.items() if k != "id"},
    }  # note in memo's place
    got = decision(columns=columns, raw=raw)
    assert got == Decision(Mode.INCREMENTAL, Reason.COLUMN_RENAMED, "column note renamed to memo (note kept)")
    assert got.backfills and got.warns


def test_a_type_change_still_comes_before_new_columns():
    columns = {**COLUMNS, "extra": "int(11)"}
    _, live = offline_table("t", columns)
    got = decision(columns=columns, raw=raw_of(live, drop=("extra",), v="text"))
    assert (got.mode, got.reason) == (Mode.FULL, Reason.INCOMPATIBLE_TYPE_CHANGE)


def rename_plan(raw_order, live_columns):
    """raw.plan_drift on raw columns in `raw_order` (all text) and live varchar columns."""
    live = [LiveColumn(n, "varchar(10)") for n in live_columns]
    existing = dict.fromkeys(raw_order, "text") | {"_loaded_at": "timestamptz", "_deleted_at": "timestamptz"}
    plan = raw.plan_drift(live, existing)
    return [(old, new.target_name) for old, new in plan.renamed], [c.target_name for c in plan.add]


def test_a_rename_is_told_from_drop_and_add_by_its_place_and_type():
    # same place, same type: renamed
    assert rename_plan(["a", "b", "c"], ["a", "x", "c"]) == ([("b", "x")], ["x"])
    # the old one dropped, a new one at the end: drop and add
    assert rename_plan(["a", "b", "c"], ["a", "c", "x"]) == ([], ["x"])
    # columns dropped or added elsewhere do not hide a rename
    assert rename_plan(["a", "b", "c", "d", "e"], ["a", "x", "c", "e", "f"]) == ([("b", "x")], ["x", "f"])
    # the last column dropped and one added at the end looks like a rename, and is filled as one
    assert rename_plan(["a", "b"], ["a", "x"]) == ([("b", "x")], ["x"])
    # two candidates for the same place: cannot tell, drop and add
    assert rename_plan(["a", "b", "c"], ["a", "x", "y", "c"]) == ([], ["x", "y"])
    # another type in raw: not the same column
    live = [LiveColumn("a", "int(11)"), LiveColumn("x", "int(11)")]
    plan = raw.plan_drift(live, {"a": "integer", "b": "text"})
    assert (plan.renamed, plan.vanished) == ([], ["b"])
