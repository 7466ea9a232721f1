"""Test aids for engine and store authors.

:mod:`roost.runtime.testing.harness` runs an engine in memory (no Redis);
:mod:`roost.runtime.testing.artifact_conformance` is a pytest suite an artifact store
subclasses. This package imports only the harness; the conformance module imports pytest
and is imported explicitly by test code.
"""

from roost.runtime.testing.harness import EngineRunner, ProgressReport, RunResult, StepLimitExceeded

__all__ = ["EngineRunner", "ProgressReport", "RunResult", "StepLimitExceeded"]
