"""Views that depend on a raw table, set aside while the table changes under them.

PostgreSQL refuses `ALTER COLUMN ... TYPE` on a column a view reads, and a table swapped in by
rename leaves its views on the old table. dbt's staging models are views on raw, and users add
views of their own (views on views too). `set_aside` captures every view that depends on the
table, transitively, drops them (the outermost first), lets the caller alter or swap the table, and
recreates them (the innermost first) as they were: definition, kind, owner, grants (table and
column level), comments on the view and its columns, options (`security_barrier`,
`check_option`, ...), column defaults, triggers and rules, and for materialized views their
indexes and whether they held data (one that did is made with the rows of its query at that point
of the load: before the window's rows are merged when a column is widened in place, after them
when the table is swapped in). It all happens in the caller's transaction: a reader of a view
waits on its lock and then reads the new view; it never finds the view missing.

Definitions are read and replayed with `search_path` set to `pg_catalog`, so every name in them is
schema-qualified and means the same object again. Views are recreated as their owner
(`SET LOCAL ROLE`), so the loader's role must be able to act as every owner: `check` says which view
stands in the way, and what to grant, before anything is changed. Grants are re-made by the owner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg2
from psycopg2.extensions import cursor

from etl_pipeline.errors import EtlError
from etl_pipeline.type_mapping import quote_ident

ViewKind = Literal["view", "materialized view"]


class ViewsInTheWay(EtlError):
    """A dependent view the loader cannot drop and recreate; nothing has been changed."""


@dataclass(frozen=True)
class Grant:
    grantee: str  # a role name, or PUBLIC
    privilege: str  # SELECT, INSERT, ...
    grantable: bool
    column: str | None = None  # a column privilege

    def sql(self, relation: str) -> str:
        who = "PUBLIC" if self.grantee == "PUBLIC" else quote_ident(self.grantee)
        what = f"{self.privilege} ({quote_ident(self.column)})" if self.column else self.privilege
        return f"GRANT {what} ON {relation} TO {who}" + (" WITH GRANT OPTION" if self.grantable else "")


@dataclass(frozen=True)
class SavedView:
    """Everything needed to make a view again as it was."""

    oid: int
    schema: str
    name: str
    kind: ViewKind
    owner: str
    definition: str  # the SELECT, names schema-qualified
    options: tuple[str, ...]  # reloptions, "name=value"
    populated: bool  # a materialized view held data
    explicit_acl: bool  # relacl was set (not the owner-only default)
    grants: tuple[Grant, ...]
    comment: str | None
    column_comments: tuple[tuple[str, str], ...]
    column_defaults: tuple[tuple[str, str], ...]
    extras: tuple[str, ...]  # CREATE statements of its triggers, rules and indexes

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.schema}.{self.name}"

    def create_sql(self) -> str:
        options = f" WITH ({', '.join(self.options)})" if self.options else ""
        if self.kind == "view":
            return f"CREATE VIEW {self.qualified}{options} AS {self.definition}"
        data = "WITH DATA" if self.populated else "WITH NO DATA"
        return f"CREATE MATERIALIZED VIEW {self.qualified}{options} AS {self.definition} {data}"


@dataclass(frozen=True)
class _Me:
    user: str
    superuser: bool
    search_path: str


# Views (and materialized views) depending on the relation, through any chain of views: a view's
# _RETURN rule depends on what it reads (a rule of a table is not followed: PostgreSQL's own error
# then says what is in the way). A view's depth is its longest chain to the relation, so
# creating by depth creates every view after the views it reads.
_DEPENDENTS_SQL = """
WITH RECURSIVE dependents(oid, depth) AS (
    SELECT r.ev_class, 1
      FROM pg_depend d
      JOIN pg_rewrite r ON r.oid = d.objid
      JOIN pg_class c ON c.oid = r.ev_class AND c.relkind IN ('v', 'm')
     WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
       AND d.refobjid = %(rel)s::regclass AND r.ev_class <> d.refobjid
       AND (%(columns)s::text[] IS NULL OR d.refobjsubid IN (
            SELECT attnum FROM pg_attribute
             WHERE attrelid = %(rel)s::regclass AND attname = ANY(%(columns)s::text[])))
    UNION
    SELECT r.ev_class, v.depth + 1
      FROM dependents v
      JOIN pg_depend d ON d.refobjid = v.oid AND d.refclassid = 'pg_class'::regclass
      JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
      JOIN pg_class c ON c.oid = r.ev_class AND c.relkind IN ('v', 'm')
     WHERE r.ev_class <> v.oid AND v.depth < 64
)
SELECT oid, max(depth) FROM dependents GROUP BY oid ORDER BY max(depth), oid
"""

_VIEW_SQL = """
SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), pg_get_viewdef(c.oid),
       coalesce(c.reloptions, '{}'), c.relispopulated, c.relacl IS NOT NULL,
       obj_description(c.oid, 'pg_class')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = %s
"""

_GRANTS_SQL = """
SELECT NULL::name, CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
       x.privilege_type, x.is_grantable
  FROM pg_class c, aclexplode(c.relacl) x WHERE c.oid = %(oid)s
UNION ALL
SELECT a.attname, CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
       x.privilege_type, x.is_grantable
  FROM pg_attribute a, aclexplode(a.attacl) x
 WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY 1 NULLS FIRST, 2, 3
"""

_COLUMNS_SQL = """
SELECT a.attname, col_description(a.attrelid, a.attnum), pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

_EXTRAS_SQL = """
SELECT statement FROM (
    SELECT 1 AS kind, t.tgname AS name, pg_get_triggerdef(t.oid) AS statement
      FROM pg_trigger t WHERE t.tgrelid = %(oid)s AND NOT t.tgisinternal
    UNION ALL
    SELECT 2, r.rulename, pg_get_ruledef(r.oid)
      FROM pg_rewrite r WHERE r.ev_class = %(oid)s AND r.rulename <> '_RETURN'
    UNION ALL
    SELECT 3, c.relname, pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %(oid)s) AS extras
 ORDER BY kind, name
"""


def dependent_views(cur: cursor, relation: str, columns: Sequence[str] | None = None) -> list[SavedView]:
    """The views depending on `relation` (a qualified name), in creation order; with `columns`, only
    those reading one of these columns, and the views depending on them."""
    me = _whoami(cur)
    with _qualified_names(cur, me):
        cur.execute(_DEPENDENTS_SQL, {"rel": relation, "columns": list(columns) if columns else None})
        oids = [int(oid) for oid, _ in cur.fetchall()]
        return [_capture(cur, oid) for oid in oids]


def check(cur: cursor, relation: str, views: Sequence[SavedView]) -> None:
    """Raise `ViewsInTheWay` naming the first view the loader's role cannot drop and recreate."""
    if not views:
        return
    me = _whoami(cur)
    if me.superuser:
        return
    for view in views:
        problem = _what_stands_in_the_way(cur, me, view)
        if problem:
            raise ViewsInTheWay(
                f"{_label(relation)}: {view.label} (owned by role {view.owner}) depends on it, and {problem}; "
                "nothing was changed. Re-run the load after that (or drop the view)."
            )


def check_dependents(cur: cursor, relation: str, columns: Sequence[str] | None = None) -> list[SavedView]:
    """The views depending on `relation` (see `dependent_views`), checked with `check`."""
    views = dependent_views(cur, relation, columns)
    check(cur, relation, views)
    return views


@contextlib.contextmanager
def set_aside(cur: cursor, relation: str, columns: Sequence[str] | None = None) -> Iterator[list[SavedView]]:
    """Drop the views depending on `relation` (or on its `columns`) for the body of the `with`, then
    recreate them; all inside the caller's transaction (an error leaves them to its rollback)."""
    views = check_dependents(cur, relation, columns)
    drop(cur, relation, views)
    yield views
    restore(cur, relation, views)


def drop(cur: cursor, relation: str, views: Sequence[SavedView]) -> None:
    """Drop `views` (in creation order as given), the views that read others first."""
    me = _whoami(cur)
    for view in reversed(views):
        try:
            with _as_role(cur, me, view.owner):
                cur.execute(f"DROP {view.kind.upper()} {view.qualified}")
        except psycopg2.Error as exc:
            raise ViewsInTheWay(_failed(relation, view, "set aside", exc)) from exc


def restore(cur: cursor, relation: str, views: Sequence[SavedView]) -> None:
    """Create `views` again (in creation order) with everything `SavedView` keeps."""
    me = _whoami(cur)
    with _qualified_names(cur, me):
        for view in views:
            try:
                _recreate(cur, me, view)
            except psycopg2.Error as exc:
                raise ViewsInTheWay(_failed(relation, view, "made again", exc)) from exc


# what to do when a view cannot be dropped or made again, by SQLSTATE (the server's text may quote
# the view's definition, so it is not shown)
_WHY = {
    "2BP01": "an object that is not a view depends on it (a function taking its row type, a column of "
    "that type): the loader sets aside views only; drop that object (the PostgreSQL log names it), "
    "load, then create it again",
    "42501": "its owner lacks a privilege the view needs (USAGE on a schema it reads): grant it",
    "55P03": "another session holds a lock on it (a long query, an open transaction): re-run when it is done",
}
_DOES_NOT_FIT = (
    "its definition does not fit the changed raw table (a column it reads changed type at the source: "
    "see the load's warning): change or drop the view"
)


def _failed(relation: str, view: SavedView, doing: str, exc: psycopg2.Error) -> str:
    code = exc.pgcode or ""
    why = _WHY.get(code) or (_DOES_NOT_FIT if doing == "made again" else "see the PostgreSQL log")
    return (
        f"{_label(relation)}: {view.label} (owned by role {view.owner}), which depends on it, could not be "
        f"{doing} around the change ({type(exc).__name__}, SQLSTATE {code or 'none'}): {why}. "
        "Nothing was changed; re-run the load after that."
    )


def _recreate(cur: cursor, me: _Me, view: SavedView) -> None:
    with _as_role(cur, me, view.owner):
        cur.execute(view.create_sql())
        if me.superuser and view.owner != me.user:
            cur.execute(f"ALTER {view.kind.upper()} {view.qualified} OWNER TO {quote_ident(view.owner)}")
        _restore_acl(cur, view)
        kind = view.kind.upper()
        if view.comment is not None:
            cur.execute(f"COMMENT ON {kind} {view.qualified} IS %s", (view.comment,))
        for column, text in view.column_comments:
            cur.execute(f"COMMENT ON COLUMN {view.qualified}.{quote_ident(column)} IS %s", (text,))
        for column, expression in view.column_defaults:
            cur.execute(
                f"ALTER VIEW {view.qualified} ALTER COLUMN {quote_ident(column)} SET DEFAULT {expression}"
            )
        for statement in view.extras:
            cur.execute(statement)


def _restore_acl(cur: cursor, view: SavedView) -> None:
    """Make the new view's privileges those of the old one: revoke what the new one was given (by
    default privileges), then grant what the old one had (no ACL: the owner's default, all)."""
    cur.execute(
        "SELECT DISTINCT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END "
        "FROM pg_class c, aclexplode(c.relacl) x WHERE c.oid = %s::regclass",
        (view.qualified,),
    )
    given = [name for (name,) in cur.fetchall()]
    for grantee in given:
        who = "PUBLIC" if grantee == "PUBLIC" else quote_ident(grantee)
        cur.execute(f"REVOKE ALL ON {view.qualified} FROM {who}")
    if given and not view.explicit_acl:
        cur.execute(f"GRANT ALL ON {view.qualified} TO {quote_ident(view.owner)}")
    for grant in view.grants:
        cur.execute(grant.sql(view.qualified))


def grants_of(cur: cursor, relation: str) -> list[Grant]:
    """The privileges granted on `relation` (a table or view) and its columns, as GRANTs to replay."""
    cur.execute(_GRANTS_SQL, {"oid": _oid(cur, relation)})
    return [Grant(grantee, privilege, grantable, column) for column, grantee, privilege, grantable in cur]


def _oid(cur: cursor, relation: str) -> int:
    cur.execute("SELECT %s::regclass::oid", (relation,))
    return int(_one(cur))


def _capture(cur: cursor, oid: int) -> SavedView:
    cur.execute(_VIEW_SQL, (oid,))
    row = cur.fetchone()
    assert row is not None  # the oid was just found in pg_depend, inside this transaction
    schema, name, relkind, owner, definition, options, populated, explicit_acl, comment = row
    cur.execute(_GRANTS_SQL, {"oid": oid})
    grants = tuple(
        Grant(grantee, privilege, grantable, column) for column, grantee, privilege, grantable in cur
    )
    cur.execute(_COLUMNS_SQL, (oid,))
    columns = cur.fetchall()
    cur.execute(_EXTRAS_SQL, {"oid": oid})
    extras = cur.fetchall()
    return SavedView(
        oid=oid,
        schema=schema,
        name=name,
        kind="materialized view" if relkind == "m" else "view",
        owner=owner,
        definition=definition.strip().rstrip(";"),
        options=tuple(options),
        populated=bool(populated),
        explicit_acl=bool(explicit_acl),
        grants=grants,
        comment=comment,
        column_comments=tuple((n, text) for n, text, _ in columns if text is not None),
        column_defaults=tuple((n, expr) for n, _, expr in columns if expr is not None),
        extras=tuple(statement.strip().rstrip(";") for (statement,) in extras),
    )


def _what_stands_in_the_way(cur: cursor, me: _Me, view: SavedView) -> str | None:
    """Why `me` cannot drop and recreate `view` as its owner (None: it can)."""
    if view.owner != me.user:
        # SET ROLE needs membership; from PostgreSQL 16 on, membership with the SET option
        cur.execute(
            "SELECT pg_has_role(%s, %s, CASE WHEN current_setting('server_version_num')::int >= 160000 "
            "THEN 'SET' ELSE 'MEMBER' END)",
            (me.user, view.owner),
        )
        if not _one(cur):
            return (
                f"the loader's role {me.user} is not a member of {view.owner}, so it cannot drop and "
                f"recreate the view around the change: run GRANT {quote_ident(view.owner)} TO "
                f"{quote_ident(me.user)}; as a superuser or an admin of {view.owner}"
            )
    cur.execute("SELECT has_schema_privilege(%s, %s, 'CREATE')", (view.owner, view.schema))
    if not _one(cur):
        return (
            f"role {view.owner} lacks CREATE on schema {view.schema}, so the view cannot be made again: "
            f"run GRANT CREATE ON SCHEMA {quote_ident(view.schema)} TO {quote_ident(view.owner)};"
        )
    return None


def _whoami(cur: cursor) -> _Me:
    cur.execute(
        "SELECT current_user, rolsuper, current_setting('search_path') FROM pg_roles WHERE rolname = current_user"
    )
    row = cur.fetchone()
    assert row is not None
    return _Me(row[0], bool(row[1]), row[2])


@contextlib.contextmanager
def _as_role(cur: cursor, me: _Me, role: str) -> Iterator[None]:
    """Act as `role` (a superuser, or the role itself, acts as it is)."""
    if me.superuser or role == me.user:
        yield
        return
    cur.execute(f"SET LOCAL ROLE {quote_ident(role)}")
    yield
    cur.execute(f"SET LOCAL ROLE {quote_ident(me.user)}")


@contextlib.contextmanager
def _qualified_names(cur: cursor, me: _Me) -> Iterator[None]:
    """Definitions read and replayed with every name schema-qualified (see the module docstring)."""
    cur.execute("SELECT set_config('search_path', 'pg_catalog', true)")
    yield
    cur.execute("SELECT set_config('search_path', %s, true)", (me.search_path,))


def _label(relation: str) -> str:
    """raw.t for "raw"."t" (names in messages are shown unquoted)."""
    return relation.replace('"', "")


def _one(cur: cursor) -> Any:
    row = cur.fetchone()
    assert row is not None
    return row[0]
