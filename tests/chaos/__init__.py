"""The chaos suite: real Palisade replicas, a PostgreSQL server and the Tavus simulator,
run through faults, SIGKILLs and a database restart, then checked against DESIGN §3.

Run it with ``python -m tests.chaos [--long] [--seed N]``; see docs/chaos.md. Nothing
here is collected by pytest: the pure checks are unit-tested in tests/unit/chaos.
"""
