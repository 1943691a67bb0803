"""Minute trends as SQL views, for Grafana and any SQL client: decisions, alerts, fraud labels, rules.

Each view has one row per minute that saw something (empty minutes are absent), with the same columns
on SQLite and PostgreSQL: ``minute`` (PostgreSQL: ``timestamptz`` from ``date_bin``; SQLite: UTC
text ``YYYY-MM-DD HH:MM:SS``) and ``minute_ms`` (the minute's start, integer ms since the epoch).

- ``trend_decisions_minute``: by decision time, how many decisions and of which kind, alerts and
  their share, mean and max score, and the receipt-to-decision latency stored with each decision
  (only decisions this server timed: ``timed`` counts them).
- ``trend_alerts_minute``: by alert creation time, alerts, where review stands, analysts' verdicts.
- ``trend_labels_minute``: by decision time, how many of that minute's decisions were labelled and
  confirmed fraud, by each transaction's latest label (as the rule performance page counts).
- ``trend_rules_minute``: by decision time, one row per rule and minute: acting and shadow hits.

docs/grafana.md says how to query them and how TimescaleDB users point them at hypertables. A later
migration that rebuilds ``decisions``, ``alerts`` or ``labels`` on SQLite (``batch_alter_table``)
must drop these views first and create them again: SQLite refuses to rename a table a view reads.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

VIEWS = ("trend_decisions_minute", "trend_alerts_minute", "trend_labels_minute", "trend_rules_minute")

#: A decision's minute on PostgreSQL. The views group by it and Grafana filters on it, so an index on
#: this very expression lets "the last hour" read that hour's decisions instead of the whole table.
PG_DECIDED_MINUTE = (
    "date_bin('1 minute', to_timestamp({column} / 1000.0), TIMESTAMPTZ '2000-01-01 00:00:00+00')"
)
PG_MINUTE_INDEX = "ix_decisions_minute"

# Each view reads a subquery ``bucketed`` holding the minute of its time column; only the bucketing
# and the reading of JSON rule lists differ between the two databases. PostgreSQL groups by the
# ``date_bin`` timestamp (TimescaleDB's ``time_bucket`` takes its place there); SQLite by the
# integer minute.
_POSTGRESQL = {
    "bucket": PG_DECIDED_MINUTE + " AS minute",
    "minute": "minute, CAST(EXTRACT(EPOCH FROM minute) * 1000 AS BIGINT) AS minute_ms",
    "group": "minute",
    "rules_of": "CROSS JOIN LATERAL jsonb_array_elements_text(CAST(decisions.{column} AS jsonb))"
    " AS fired(rule)",
    "rule": "fired.rule",
}
_SQLITE = {
    "bucket": "({column} / 60000) * 60000 AS minute_ms",
    "minute": "datetime(minute_ms / 1000, 'unixepoch') AS minute, minute_ms",
    "group": "minute_ms",
    "rules_of": "CROSS JOIN json_each(decisions.{column}) AS fired",
    "rule": "fired.value",
}

_DECISIONS = """
CREATE VIEW trend_decisions_minute AS
SELECT {minute},
       count(*) AS decisions,
       count(*) FILTER (WHERE decision = 'approve') AS approve,
       count(*) FILTER (WHERE decision = 'challenge') AS challenge,
       count(*) FILTER (WHERE decision = 'review') AS review,
       count(*) FILTER (WHERE decision = 'decline') AS decline,
       count(*) FILTER (WHERE is_alert) AS alerts,
       CAST(count(*) FILTER (WHERE is_alert) AS DOUBLE PRECISION) / count(*) AS alert_rate,
       CAST(avg(score) AS DOUBLE PRECISION) AS mean_score,
       max(score) AS max_score,
       count(latency_ms) AS timed,
       avg(latency_ms) AS mean_latency_ms,
       max(latency_ms) AS max_latency_ms
FROM (SELECT {decided}, decision, is_alert, score, latency_ms FROM decisions) AS bucketed
GROUP BY {group}
"""

_ALERTS = """
CREATE VIEW trend_alerts_minute AS
SELECT {minute},
       count(*) AS alerts,
       count(*) FILTER (WHERE status = 'open') AS open_alerts,
       count(*) FILTER (WHERE status = 'in_review') AS in_review,
       count(*) FILTER (WHERE status = 'closed') AS closed,
       count(*) FILTER (WHERE verdict = 'fraud') AS verdict_fraud,
       count(*) FILTER (WHERE verdict = 'legit') AS verdict_legit,
       CAST(avg(score) AS DOUBLE PRECISION) AS mean_score,
       max(score) AS max_score,
       sum(amount) AS amount
FROM (SELECT {created}, status, verdict, score, amount FROM alerts) AS bucketed
GROUP BY {group}
"""

# A transaction's verdict is its latest label (highest id): a chargeback reversed later counts once,
# as what it finally is. Looked up per decision of the minutes asked for, through the labels index,
# rather than by aggregating the whole labels table at every query.
_LABELS = """
CREATE VIEW trend_labels_minute AS
SELECT {minute},
       count(*) AS decisions,
       count(verdict) AS labelled,
       count(*) FILTER (WHERE verdict) AS confirmed_fraud,
       count(*) FILTER (WHERE verdict AND is_alert) AS fraud_alerted,
       count(*) FILTER (WHERE NOT verdict AND is_alert) AS legit_alerted,
       CAST(count(*) FILTER (WHERE verdict) AS DOUBLE PRECISION) / count(*) AS fraud_rate
FROM (
    SELECT {decided}, is_alert,
           (SELECT labels.is_fraud FROM labels WHERE labels.transaction_id = decisions.transaction_id
            ORDER BY labels.id DESC LIMIT 1) AS verdict
    FROM decisions
) AS bucketed
GROUP BY {group}
"""

# Most decisions hit no rule: ``<> '[]'`` skips them before their JSON is read.
_RULES = """
CREATE VIEW trend_rules_minute AS
SELECT {minute},
       rule,
       count(*) FILTER (WHERE NOT shadow) AS hits,
       count(*) FILTER (WHERE shadow) AS shadow_hits
FROM (
    SELECT {decided}, {rule} AS rule, FALSE AS shadow
    FROM decisions {acting_rules_of}
    WHERE decisions.rules <> '[]'
    UNION ALL
    SELECT {decided}, {rule} AS rule, TRUE AS shadow
    FROM decisions {shadow_rules_of}
    WHERE decisions.shadow_rules <> '[]'
) AS bucketed
GROUP BY {group}, rule
"""


def view_statements(dialect: str) -> list[str]:
    """The CREATE VIEW statements for ``dialect`` (``postgresql`` or ``sqlite``)."""
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"the trend views are written for PostgreSQL and SQLite, not {dialect}")
    parts = _POSTGRESQL if dialect == "postgresql" else _SQLITE
    fields = {
        "minute": parts["minute"],
        "group": parts["group"],
        "decided": parts["bucket"].format(column="decisions.decided_at_ms"),
        "created": parts["bucket"].format(column="alerts.created_at_ms"),
        "rule": parts["rule"],
        "acting_rules_of": parts["rules_of"].format(column="rules"),
        "shadow_rules_of": parts["rules_of"].format(column="shadow_rules"),
    }
    return [template.format(**fields) for template in (_DECISIONS, _ALERTS, _LABELS, _RULES)]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in view_statements(dialect):
        op.execute(statement)
    if dialect == "postgresql":
        # Not on SQLite: there the views serve the sqlite3 shell and notebooks, and the default
        # store's every write would pay for an index no dashboard reads.
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {PG_MINUTE_INDEX} ON decisions "
            f"({PG_DECIDED_MINUTE.format(column='decided_at_ms')})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {PG_MINUTE_INDEX}")
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
