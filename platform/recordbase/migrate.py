"""Applying a ``Plan`` to the database: DDL, value conversion and metadata, in one transaction.

The caller opens the transaction; anything raised here rolls all of it back,
so a definition change is applied whole or not at all. A dry run is the same
work followed by a rollback, so it reports exactly what a real run would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .actor import Actor
from .audit import write_audit
from .database import create_search_index
from .definition import new_id
from .errors import PlanRefused, Problem
from .fields import Field, FieldValueError
from .models import App, AppVersion, FieldMeta, Sequence, TableMeta, Trash, utcnow
from .plan import Plan, needs_conversion
from .schema import AppSchema, build_app_schema, index_specs

if TYPE_CHECKING:
    from .core import Recordbase

apps_t: sa.Table = App.__table__  # type: ignore[assignment]
versions_t: sa.Table = AppVersion.__table__  # type: ignore[assignment]
tables_t: sa.Table = TableMeta.__table__  # type: ignore[assignment]
fields_t: sa.Table = FieldMeta.__table__  # type: ignore[assignment]
trash_t: sa.Table = Trash.__table__  # type: ignore[assignment]
sequences_t: sa.Table = Sequence.__table__  # type: ignore[assignment]

MAX_REPORTED = 100  # unconvertible values listed before "and N more"


def physical_ids(conn: sa.Connection, app_id: int) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """The live (not removed) table and field ids of an app, by stable id."""
    tables = {
        uid: pk for pk, uid in conn.execute(
            sa.select(tables_t.c.id, tables_t.c.uid).where(tables_t.c.app_id == app_id, tables_t.c.removed_at.is_(None))
        )
    }
    by_pk = {pk: uid for uid, pk in tables.items()}
    fields = {
        (by_pk[tpk], uid): pk for pk, tpk, uid in conn.execute(
            sa.select(fields_t.c.id, fields_t.c.table_id, fields_t.c.uid)
            .where(fields_t.c.table_id.in_(list(by_pk) or [0]), fields_t.c.removed_at.is_(None))
        )
    }
    return tables, fields


class Migrator:
    """Carries out one plan on one connection."""

    def __init__(self, rb: Recordbase, conn: sa.Connection, actor: Actor, *, force: bool) -> None:
        self.rb = rb
        self.conn = conn
        self.actor = actor
        self.force = force
        # alembic is loaded by the first definition change, not by every server process.
        from alembic.migration import MigrationContext
        from alembic.operations import Operations

        self.ops = Operations(MigrationContext.configure(conn))
        self.now = utcnow()
        self.expires = self.now + dt.timedelta(days=rb.settings.trash_days)
        self.forced: list[Problem] = []

    def apply(self, plan: Plan, app_row: Mapping[Any, Any] | None, old: AppSchema | None) -> AppSchema:
        new_def = plan.definition
        if app_row is None:
            app_id = self.conn.execute(
                sa.insert(apps_t).values(uid=new_id("app"), slug=new_def["slug"], version=0, definition=new_def,
                                         installed_at=self.now, updated_at=self.now).returning(apps_t.c.id)
            ).scalar_one()
            version = 0
        else:
            app_id, version = app_row["id"], app_row["version"]
        tables_by_uid = {t["id"]: t for t in new_def["tables"]}
        added_tables: list[str] = []
        added_fields: list[tuple[str, str]] = []
        converted: list[tuple[str, str, int]] = []  # table uid, field uid, old field pk
        revived_fields: list[str] = []  # table uids whose search documents must be rebuilt
        table_pks, field_pks = physical_ids(self.conn, app_id)
        for step in plan.steps:
            if step.kind == "add_table":
                tdef = tables_by_uid[step.tuid]
                revived = self._revive_table(app_id, tdef)
                if revived is not None:
                    table_pks[tdef["id"]], fpks = revived
                    field_pks.update({(tdef["id"], fuid): fpk for fuid, fpk in fpks.items()})
                    continue
                tpk = self.conn.execute(
                    sa.insert(tables_t).values(app_id=app_id, uid=tdef["id"], slug=tdef["slug"]).returning(tables_t.c.id)
                ).scalar_one()
                table_pks[tdef["id"]] = tpk
                for fdef in tdef["fields"]:
                    field_pks[(tdef["id"], fdef["id"])] = self._insert_field(tpk, fdef)
                added_tables.append(tdef["id"])
            elif step.kind == "remove_table":
                tpk = table_pks.pop(step.tuid)
                self._retire(tables_t, tpk, step.tuid)
                self._trash("table", app_id, tpk, None, {"definition": self._old_table_def(old, step.tuid)})
            elif step.kind == "rename_table":
                self.conn.execute(sa.update(tables_t).where(tables_t.c.id == table_pks[step.tuid]).values(slug=step.detail["new"]))
            elif step.kind == "add_field":
                fdef = self._field_def(tables_by_uid[step.tuid], step.fuid)
                revived_pk = self._revive_field(table_pks[step.tuid], fdef)
                if revived_pk is not None:
                    field_pks[(step.tuid, step.fuid)] = revived_pk
                    revived_fields.append(step.tuid)
                    continue
                field_pks[(step.tuid, step.fuid)] = self._insert_field(table_pks[step.tuid], fdef)
                added_fields.append((step.tuid, step.fuid))
            elif step.kind == "remove_field":
                fpk = field_pks.pop((step.tuid, step.fuid))
                self._retire(fields_t, fpk, step.fuid)
                self._trash("field", app_id, table_pks[step.tuid], fpk,
                            {"table": step.tuid, "definition": self._old_field_def(old, step.tuid, step.fuid)})
            elif step.kind == "rename_field":
                self.conn.execute(sa.update(fields_t).where(fields_t.c.id == field_pks[(step.tuid, step.fuid)]).values(slug=step.detail["new"]))
            elif step.kind == "convert_field":
                old_pk = field_pks[(step.tuid, step.fuid)]
                self._retire(fields_t, old_pk, step.fuid)
                fdef = self._field_def(tables_by_uid[step.tuid], step.fuid)
                field_pks[(step.tuid, step.fuid)] = self._insert_field(table_pks[step.tuid], fdef)
                converted.append((step.tuid, step.fuid, old_pk))
        new = build_app_schema(
            {"id": app_id, "uid": "", "slug": new_def["slug"], "version": version + 1, "definition": new_def},
            table_pks, field_pks, self.rb.settings.default_phone_region, self.rb.keys,
        )
        by_uid = {ts.uid: ts for ts in new.tables.values()}
        for tuid in added_tables:
            self._create_table(new, by_uid[tuid])
        for tuid, fuid in added_fields:
            ts = by_uid[tuid]
            self._add_field(ts, ts.field_by_uid(fuid), fill_autonumber=True)  # type: ignore[arg-type]
        for tuid, fuid, old_pk in converted:
            ts = by_uid[tuid]
            f = ts.field_by_uid(fuid)
            assert f is not None and old is not None
            self._add_field(ts, f, fill_autonumber=True)
            self._convert(old, ts, f, old_pk)
            self._trash("field", app_id, ts.pk, old_pk, {"table": tuid, "replaced_by": f.pk,
                                                          "definition": self._old_field_def(old, tuid, fuid)})
        for step in plan.steps:
            if step.kind == "change_index":
                ts = by_uid[step.tuid]
                self._change_index(ts, ts.field_by_uid(step.fuid), step.detail)  # type: ignore[arg-type]
            elif step.kind == "rebuild_search":
                self.rb.rebuild_search(self.conn, by_uid[step.tuid])
        for tuid in sorted(set(revived_fields)):
            self.rb.rebuild_search(self.conn, by_uid[tuid])
        if self.forced:
            write_audit(self.conn, self.actor, "values_dropped", app_id=app_id,
                        entries=[(None, {"values": [p.as_dict() for p in self.forced]})])
        self.conn.execute(sa.update(apps_t).where(apps_t.c.id == app_id).values(
            slug=new_def["slug"], version=version + 1, definition=new_def, updated_at=self.now))
        self.conn.execute(sa.insert(versions_t).values(
            app_id=app_id, version=version + 1, definition=new_def, plan=[s.as_dict() for s in plan.steps],
            created_at=self.now, created_by=self.actor.label))
        write_audit(self.conn, self.actor, "install" if app_row is None else "definition_change", app_id=app_id,
                    entries=[(None, {"version": version + 1, "plan": plan.describe()})])
        return new

    # --- metadata ----------------------------------------------------------------

    def _insert_field(self, table_pk: int, fdef: Mapping[str, Any]) -> int:
        return self.conn.execute(
            sa.insert(fields_t).values(table_id=table_pk, uid=fdef["id"], slug=fdef["slug"], type=fdef["type"]).returning(fields_t.c.id)
        ).scalar_one()

    def _retire(self, table: sa.Table, pk: int, uid: str) -> None:
        # The stable id is freed (suffixed with the row id) so the same field can come back.
        self.conn.execute(sa.update(table).where(table.c.id == pk).values(removed_at=self.now, uid=f"{uid}~{pk}"[:64]))

    def _trash(self, kind: str, app_id: int, table_pk: int | None, field_pk: int | None, payload: dict[str, Any]) -> None:
        self.conn.execute(sa.insert(trash_t).values(
            kind=kind, app_id=app_id, table_id=table_pk, field_id=field_pk, payload=payload,
            deleted_at=self.now, deleted_by=self.actor.label, expires_at=self.expires))

    @staticmethod
    def _link_target_uid(app: AppSchema, f: Field) -> str | None:
        target = f.options.get("table")
        ts = next((t for t in app.tables.values() if target in (t.slug, t.uid)), None)
        return ts.uid if ts else None

    def _trashed(self, kind: str, **where: Any) -> list[Mapping[Any, Any]]:
        stmt = sa.select(trash_t).where(trash_t.c.kind == kind, trash_t.c.expires_at > self.now)
        for key, value in where.items():
            stmt = stmt.where(trash_t.c[key] == value)
        return list(self.conn.execute(stmt.order_by(trash_t.c.id.desc())).mappings())

    def _revive_field(self, table_pk: int, fdef: Mapping[str, Any]) -> int | None:
        """Bring back a removed field with the same id and type, data and all."""
        for entry in self._trashed("field", table_id=table_pk):
            if "replaced_by" in entry["payload"]:
                continue  # the pre-conversion column of a field that still exists
            row = self.conn.execute(sa.select(fields_t).where(fields_t.c.id == entry["field_id"])).mappings().first()
            if not row or row["uid"] != f"{fdef['id']}~{row['id']}"[:64]:
                continue
            # Its stored values must still mean the same thing (type, scale, many, target).
            if needs_conversion(entry["payload"].get("definition") or {"type": row["type"]}, fdef) is None:
                self.conn.execute(sa.update(fields_t).where(fields_t.c.id == row["id"]).values(
                    uid=fdef["id"], slug=fdef["slug"], removed_at=None))
                self.conn.execute(sa.delete(trash_t).where(trash_t.c.id == entry["id"]))
                return int(row["id"])
        return None

    def _revive_table(self, app_id: int, tdef: Mapping[str, Any]) -> tuple[int, dict[str, int]] | None:
        """Bring back a removed table with the same id whose fields are unchanged."""
        for entry in self._trashed("table", app_id=app_id):
            row = self.conn.execute(sa.select(tables_t).where(tables_t.c.id == entry["table_id"])).mappings().first()
            if not row or row["uid"] != f"{tdef['id']}~{row['id']}"[:64]:
                continue
            live = {
                r["uid"]: (r["id"], r["type"]) for r in self.conn.execute(
                    sa.select(fields_t).where(fields_t.c.table_id == row["id"], fields_t.c.removed_at.is_(None))).mappings()
            }
            if {f["id"]: f["type"] for f in tdef["fields"]} != {uid: t for uid, (_, t) in live.items()}:
                return None
            old_fields = {f["id"]: f for f in (entry["payload"].get("definition") or {}).get("fields", [])}
            if any(f["id"] not in old_fields or needs_conversion(old_fields[f["id"]], f) is not None for f in tdef["fields"]):
                return None
            self.conn.execute(sa.update(tables_t).where(tables_t.c.id == row["id"]).values(
                uid=tdef["id"], slug=tdef["slug"], removed_at=None))
            for f in tdef["fields"]:
                self.conn.execute(sa.update(fields_t).where(fields_t.c.id == live[f["id"]][0]).values(slug=f["slug"]))
            self.conn.execute(sa.delete(trash_t).where(trash_t.c.id == entry["id"]))
            return int(row["id"]), {uid: pk for uid, (pk, _) in live.items()}
        return None

    @staticmethod
    def _field_def(tdef: Mapping[str, Any], fuid: str) -> Mapping[str, Any]:
        return next(f for f in tdef["fields"] if f["id"] == fuid)

    @staticmethod
    def _old_table_def(old: AppSchema | None, tuid: str) -> Any:
        ts = old.table_by_uid(tuid) if old else None
        return dict(ts.definition) if ts else None

    @staticmethod
    def _old_field_def(old: AppSchema | None, tuid: str, fuid: str) -> Any:
        ts = old.table_by_uid(tuid) if old else None
        f = ts.field_by_uid(fuid) if ts else None
        return dict(f.definition) if f else None

    # --- DDL --------------------------------------------------------------------------

    def _create_table(self, app: AppSchema, ts: Any) -> None:
        ts.table.create(self.conn)
        for junction in ts.junctions.values():
            junction.create(self.conn)
        for name, columns, unique in index_specs(ts):
            self.ops.create_index(name, ts.name, columns, unique=unique)
        create_search_index(self.conn, ts.name)
        for f in ts.fields.values():
            if f.type.name == "autonumber":
                self.conn.execute(sa.insert(sequences_t).values(field_id=f.pk, next_value=1))

    def _add_field(self, ts: Any, f: Field, *, fill_autonumber: bool) -> None:
        """Add a field's column (O(1): no default, so no table rewrite) or junction table."""
        junction = ts.junctions.get(f.slug)
        if junction is not None:
            junction.create(self.conn)
            return
        if f.type.system:
            return
        for column in f.type.columns(f):
            self.ops.add_column(ts.name, column)
        for name, columns, unique in index_specs(ts):
            if columns == [f.type.index_column(f)]:
                self._create_index_checked(ts, f, name, unique)
        if f.type.name == "autonumber":
            count = 0
            if fill_autonumber:
                # Existing records are numbered in creation order.
                ids = list(self.conn.execute(sa.select(ts.table.c.id).order_by(ts.table.c.id)).scalars())
                if ids:
                    self.conn.execute(
                        sa.update(ts.table).where(ts.table.c.id == sa.bindparam("rid")).values({f.column_name: sa.bindparam("n")}),
                        [{"rid": rid, "n": n} for n, rid in enumerate(ids, start=1)],
                    )
                count = len(ids)
            self.conn.execute(sa.insert(sequences_t).values(field_id=f.pk, next_value=count + 1))

    def _create_index_checked(self, ts: Any, f: Field, name: str, unique: bool) -> None:
        if unique:
            col = ts.table.c[f.type.index_column(f)]
            dupes = self.conn.execute(
                sa.select(col, sa.func.count()).where(col.is_not(None)).group_by(col).having(sa.func.count() > 1).limit(MAX_REPORTED)
            ).all()
            if dupes:
                problems = [Problem(f"/fields/{f.slug}", f"{count} records share one value") for _value, count in dupes]
                raise PlanRefused(f'cannot make "{ts.slug}.{f.slug}" unique: {len(dupes)} value(s) are used more than once', problems)
        self.ops.create_index(name, ts.name, [f.type.index_column(f)], unique=unique)

    def _change_index(self, ts: Any, f: Field, detail: Mapping[str, Any]) -> None:
        prefix = "ux" if detail["flag"] == "unique" else "ix"
        name = f"{prefix}_{ts.name}_{f.column_name}"
        if detail["action"] == "create":
            self._create_index_checked(ts, f, name, detail["flag"] == "unique")
        else:
            self.ops.drop_index(name, table_name=ts.name, if_exists=True)

    # --- conversion --------------------------------------------------------------------

    def _convert(self, old: AppSchema, ts: Any, f: Field, old_pk: int) -> None:
        """Rewrite every value of a field whose type or storage changed, through its text form."""
        old_ts = old.table_by_uid(ts.uid)
        assert old_ts is not None
        old_f = old_ts.field_by_uid(f.uid)
        assert old_f is not None and old_f.pk == old_pk
        if getattr(f.type, "computed", False):
            return  # computed on read from now on; the old values stay with the retired field in the trash
        old_junction = old_ts.junctions.get(old_f.slug)
        new_junction = ts.junctions.get(f.slug)
        target_changed = f.type.name == "link" and self._link_target_uid(old, old_f) != self._link_target_uid(ts.app, f)
        values: dict[int, Any] = {}
        if old_junction is not None:
            for src, dst in self.conn.execute(sa.select(old_junction.c.src, old_junction.c.dst).order_by(old_junction.c.src, old_junction.c.position)):
                values.setdefault(src, []).append(dst)
        elif not old_f.type.system and not getattr(old_f.type, "computed", False):
            col = old_ts.table.c[old_f.column_name]
            for rid, raw in self.conn.execute(sa.select(old_ts.table.c.id, col).where(col.is_not(None))):
                values[rid] = old_f.type.from_db(old_f, raw)
        failures: list[Problem] = []
        converted: dict[int, Any] = {}
        for rid, value in values.items():
            text = old_f.type.to_text(old_f, value)
            # Personal values never appear in clear in an error report.
            shown = text if old_f.sensitivity in ("public", "internal") else old_f.type.mask(old_f, value)
            try:
                if target_changed:
                    raise FieldValueError("links to another table now")
                converted[rid] = f.type.parse(f, f.type.from_text(f, text))
            except FieldValueError as exc:
                failures.append(Problem(f"/records/{rid}/{f.slug}", f"{shown!r} cannot become {f.type.name}: {exc}"))
        if failures and not self.force:
            shown = failures[:MAX_REPORTED]
            more = f" (and {len(failures) - len(shown)} more)" if len(failures) > len(shown) else ""
            raise PlanRefused(
                f'{len(failures)} value(s) of "{ts.slug}.{f.slug}" cannot be converted to {f.type.name}{more}; '
                "fix them or apply with --force to empty them", shown)
        self.forced.extend(failures)
        if new_junction is not None:
            rows = [{"src": rid, "dst": dst, "position": i} for rid, value in converted.items() if value for i, dst in enumerate(value)]
            if rows:
                self.conn.execute(sa.insert(new_junction), rows)
        elif converted:
            columns = f.type.stored_columns(f)
            self.conn.execute(
                sa.update(ts.table).where(ts.table.c.id == sa.bindparam("rid")).values({c: sa.bindparam(f"v_{c}") for c in columns}),
                [{"rid": rid, **{f"v_{c}": v for c, v in f.type.db_values(f, value).items()}} for rid, value in converted.items()],
            )


