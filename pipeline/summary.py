"""The short run summary `crm run` prints: row counts per table and customers per pyramid tier."""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from pipeline.warehouse import sql_text, table_ref
from pipeline.warehouse.schema import sql_objects


def warehouse_objects() -> list[str]:
    """Every table and view sql/ defines, e.g. "dim_customer", "restricted.customer_pii"."""
    return sorted(o.name for folder in ("tables", "views") for o in sql_objects(folder))


def row_counts(conn: sa.Connection) -> dict[str, int]:
    return {name: conn.execute(sa.select(sa.func.count()).select_from(table_ref(name))).scalar_one()
            for name in warehouse_objects()}


def pyramid(conn: sa.Connection, as_of: date) -> list[tuple[str, int, float]]:
    return [tuple(r) for r in conn.execute(sa.text(sql_text("queries/pyramid_for_date")), {"as_of": as_of})]


def sources(conn: sa.Connection) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sa.text(sql_text("queries/source_reconciliation")))]


def reasons(conn: sa.Connection) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sa.text(sql_text("queries/quarantine_reasons")))]


def render(counts: dict[str, int], tiers: list[tuple[str, int, float]], as_of: date,
           recon: list[tuple] = (), why: list[tuple] = ()) -> str:
    width = max(map(len, counts))
    lines = ["Sources (all batches loaded so far):"]
    for source, batches, raw, accepted, quarantined in recon:
        top = ", ".join(f"{code} {n:,}" for s, code, n in why if s == source)
        lines.append(f"  {source:<11} {batches:>5,} batches  raw {raw:>10,} = accepted {accepted:>10,}"
                     f" + quarantined {quarantined:>8,}" + (f"  ({top})" if top else ""))
    lines += ["Warehouse row counts:"] + [f"  {t:<{width}}  {n:>12,}" for t, n in counts.items()]
    lines.append(f"Customer pyramid as of {as_of} (customers, share of 12-month revenue):")
    lines += [f"  {tier:<10} {n:>10,}  {share:6.1%}" for tier, n, share in tiers]
    return "\n".join(lines)
