"""Test aids for engine, store and backend authors.

:mod:`roost.runtime.testing.harness` runs an engine in memory (no backend);
:mod:`roost.runtime.testing.artifact_conformance` is a pytest suite an artifact store
subclasses; :mod:`roost.runtime.testing.backend_conformance` is the one a backend subclasses,
with its engine (:mod:`~roost.runtime.testing.chain_engine`) and its worker processes
(:mod:`~roost.runtime.testing.processes`, :mod:`~roost.runtime.testing.worker`). This package
imports only the harness; the conformance suites import pytest and are imported explicitly by
test code.
"""

from roost.runtime.testing.harness import EngineRunner, ProgressReport, RunResult, StepLimitExceeded

__all__ = ["EngineRunner", "ProgressReport", "RunResult", "StepLimitExceeded"]
