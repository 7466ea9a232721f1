"""Each Roost script's contract in Python: the KEYS, ARGV and replies of ``lua/NAME.lua``.

Written in the notation of the scripts' headers (see :mod:`roost.redis.contract`); a test
holds each one equal to its script's header, and :mod:`roost.redis.calls` packs every call
and reads every reply by them.
"""

from __future__ import annotations

from roost.redis.contract import Contract

__all__ = ["CONTRACTS"]

_HOLDER = {"DUP": "", "STALE": "", "GONE": "", "CANCELLED": "woken"}

CONTRACTS: dict[str, Contract] = {
    c.name: c
    for c in (
        Contract.of(
            "acquire",
            keys="@states @leases @due @events @stats @saq_active @saq_incomplete @strand meta "
            "item snap job res* resw*",
            args="@events_maxlen @worker @lease_ttl work_id dispatch token max_attempts nres "
            "resources wait_base_ms wait_cap_ms engine_limits",
            replies={
                "OK": "epoch lease_expires now attempt version item_json snap_json cancelled "
                "queued_since late_due",
                "GONE": "",
                "SKIP": "state",
                "NEEDRES": "resources",
                "WAIT": "delay_ms",
                "DEAD": "",
            },
        ),
        Contract.of(
            "commit",
            keys="@states @leases @due @events @stats @saq_queued @saq_incomplete @engines "
            "meta snap hist job res* resw* sig kids? children*(meta item idem)",
            args="@saq_name @events_maxlen @worker @engine work_id token epoch op "
            "expected_version snapshot_json step outcome delay_ms dispatch job_suffix "
            "history nres event_data init_json init_step ended_ms wait budget nkids? "
            "kids_wait? children*(work_id item_json engine resources priority idem imax)",
            replies={
                "OK": "version event_id woken now due_ms paused",
                **_HOLDER,
                "CONFLICT": "version",
                "TAKEN": "child",
                "RACE": "key",
            },
        ),
        Contract.of(
            "fail",
            keys="@states @leases @due @events @stats meta res* resw*",
            args="@events_maxlen @worker work_id token epoch op error_json backoff_ms terminal "
            "nres data retry_data",
            replies={
                "RETRYING": "due_ms woken",
                "DEAD": "woken",
                "FAILED": "woken",
                **_HOLDER,
            },
        ),
        Contract.of(
            "release",
            keys="@states @leases @due @events @saq_queued @saq_incomplete @engines meta job "
            "res* resw*",
            args="@saq_name @events_maxlen @worker @engine work_id token epoch op dispatch "
            "job_suffix nres reason",
            replies={"OK": "woken", **_HOLDER},
        ),
        Contract.of(
            "progress",
            keys="@events meta",
            args="@events_maxlen @worker work_id token epoch report",
            replies={"OK": "", "STALE": "", "GONE": ""},
        ),
        Contract.of(
            "renew",
            keys="@leases items*(meta res*)",
            args="@lease_ttl count items*(work_id token epoch nres)",
            replies={"": "now statuses*"},
        ),
        Contract.of(
            "enqueue",
            keys="@states @due @events @stats @saq_queued @saq_incomplete @engines items*(meta "
            "item snap idem job)",
            args="@saq_name @events_maxlen @worker @engine queue items*(work_id item_json "
            "engine resources priority delay_ms idem dispatch job_suffix seed imax)",
            replies={"": "items*(work_id created)"},
        ),
        Contract.of("dequeue", keys="@saq_queued @saq_active", args="n", replies={"": "jobs*"}),
        Contract.of(
            "undeliver", keys="@saq_queued @saq_active", args="jobs*", replies={"": "count"}
        ),
        Contract.of("hold", keys="key", args="holder ttl_ms", replies={"": "held"}),
        Contract.of(
            "promote",
            keys="@states @due @saq_queued @saq_incomplete @engines items*(meta job)",
            args="@saq_name @engine count items*(work_id dispatch job_suffix)",
            replies={"": "queued next_due now"},
        ),
        Contract.of(
            "recover",
            keys="@states @leases @due @events @stats @saq_queued @saq_incomplete @engines "
            "beats items*(meta job res* resw*)",
            args="@saq_name @events_maxlen @worker @engine count holder beat_seen forget "
            "items*(work_id token dispatch job_suffix resources nres)",
            replies={"": "requeued dead woken alive"},
        ),
        Contract.of(
            "reclaim",
            keys="@states @due @events @saq_queued @saq_active @saq_incomplete @strand "
            "@engines jobs*(meta job new_job)",
            args="@saq_name @events_maxlen @worker @engine count grace_ms jobs*(work_id "
            "dispatch new_dispatch new_job_suffix)",
            replies={"": "redispatched cleaned"},
        ),
        Contract.of(
            "migrate",
            keys="@states @due @saq_queued @saq_incomplete @engines old_queued old_incomplete "
            "jobs*(meta job new_job)",
            args="@saq_name @engine count jobs*(work_id dispatch new_dispatch new_job_suffix)",
            replies={"": "moved dropped"},
        ),
        Contract.of(
            "purge",
            keys="@states items*(meta item snap hist idem sig kids)",
            args="count retention_ms work_ids*",
            replies={"": "deleted"},
        ),
        Contract.of(
            "cancel",
            keys="@states @due @events @stats meta",
            args="@events_maxlen @worker work_id",
            replies={"OK": "previous", "GONE": "", "TERMINAL": "state"},
        ),
        Contract.of(
            "pause",
            keys="@states @due @events meta",
            args="@events_maxlen @worker work_id reason",
            replies={"OK": "previous", "GONE": "", "TERMINAL": "state", "ALREADY": "state"},
        ),
        Contract.of(
            "resume",
            keys="@states @due @events @saq_queued @saq_incomplete @engines meta sig job",
            args="@saq_name @events_maxlen @worker @engine work_id dispatch job_suffix",
            replies={"OK": "state", "GONE": "", "CONFLICT": "state"},
        ),
        Contract.of(
            "retry",
            keys="@states @due @events @saq_queued @saq_incomplete @engines meta job",
            args="@saq_name @events_maxlen @worker @engine work_id dispatch job_suffix",
            replies={"OK": "previous", "GONE": "", "CONFLICT": "state"},
        ),
        Contract.of(
            "replay",
            keys="@states @due @events @saq_queued @saq_incomplete @engines meta snap hist job",
            args="@saq_name @events_maxlen @worker @engine work_id expected_version "
            "snapshot_json dispatch job_suffix history from_version",
            replies={"OK": "version", "GONE": "", "CONFLICT": "state version"},
        ),
        Contract.of(
            "signal",
            keys="@states @due @events @stats @saq_queued @saq_incomplete @engines meta sig job",
            args="@saq_name @events_maxlen @worker @engine work_id name payload sender "
            "dispatch job_suffix max_pending",
            replies={
                "WOKE": "signal_id",
                "KEPT": "signal_id",
                "GONE": "",
                "TERMINAL": "state",
                "FULL": "pending",
            },
        ),
        Contract.of(
            "budget",
            keys="@events meta",
            args="@events_maxlen @worker work_id add_steps add_cost add_runtime_ms own_steps "
            "own_cost own_runtime_ms",
            replies={"OK": "steps cost runtime_ms", "GONE": "", "TERMINAL": "state"},
        ),
    )
}
"""Every script's contract, as its header states it (checked by a test)."""
