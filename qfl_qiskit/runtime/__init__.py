"""The hardware path: job specs run as Runtime jobs (job, batch, session), records written before waiting, fetch
after a crash, cost estimates and budgets, retries. Shared by ``qfl submit`` and ``qfl jobs``; the estimator
adapter over Runtime's primitive stays in :mod:`qfl_qiskit.execution.runtime`.

Modules: :mod:`.jobs` (transpile, estimate, submit, wait, fetch, status, cancel), :mod:`.records` (append-only
job records and their artifacts), :mod:`.service` (execution modes, the Runtime estimator of a job, retries,
service access, result encoding).
"""

from __future__ import annotations
