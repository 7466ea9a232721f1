"""The reliability (chaos) suite's scenario library, shared by ``tests/chaos`` and
``scripts/chaos.py``.

- :mod:`.engine`: the hash-chain engine with a poison switch that lives in a file;
- :mod:`.worker`: ``python -m roost_testkit.chaos.worker``, a worker that records its events;
- :mod:`.procs`: real subprocesses (workers, clients), always cleaned up by PID;
- :mod:`.history`: reading the event stream and the logs, and auditing what they show;
- :mod:`.invariants`: a live probe of I3 (every unfinished item is findable);
- :mod:`.soak`, :mod:`.drain`, :mod:`.faults`, :mod:`.contention`, :mod:`.schedules`: the
  scenarios;
- :mod:`.scenarios`: the scenarios, their CI-size and full-size settings, and their results.
"""
