"""The servers the test suite and the benchmarks run against: a throwaway PostgreSQL cluster
(:mod:`.cluster`), the container lane (:mod:`.container`), the choice between them
(:mod:`.lanes`) and the Supabase shape (:mod:`.supabase`).

Not part of the product: the wheel leaves this package out (``pyproject.toml``), nothing else in
``scheduler_admin`` imports it (the import contracts in ``pyproject.toml`` keep it so), and
``tests/`` and ``benchmarks/`` import it from the checkout.
"""
