"""The station's durable record of its decisions: the event journal (SQLite), the evidence store, and the
MQTT publisher that forwards the journal to the plant (store-and-forward, at-least-once, in order).

The pipeline's entry point is :meth:`edge.journal.journal.Journal.append` with a record from
:func:`edge.journal.records.from_event` (or :func:`~edge.journal.records.describe_record`).
"""
