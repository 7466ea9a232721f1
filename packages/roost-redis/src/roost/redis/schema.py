"""The fields of an item's meta hash (``Keys.meta(work_id)``), for Python and Lua alike.

The meta hash holds an item's runtime state; its field names are short because a finished
item keeps its meta for the retention period. Python reads and writes them through
:class:`Meta`; the Lua scripts name them as string literals, and a test
(``test_meta_schema.py``) checks that every field a script reads or writes on a meta key is
a member here, and that every member is used by some script. Names are stored data: never
rename one (data written by earlier versions must stay readable); add a member instead.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["STATUS_FIELDS", "Meta"]


class Meta(StrEnum):
    """The meta hash's fields (the member's value is the field's name in Redis)."""

    # -- identity and placement
    ENGINE = "engine"
    """The item's engine id (its delivery list is that engine's)."""
    QUEUE = "queue"
    """The queue the item belongs to."""
    PRIORITY = "prio"
    """Priority: above 0 the item is queued at the front of its engine's list (absent: 0)."""
    RESOURCES = "res"
    """The resources a step claims, space-joined (absent: none)."""
    IDEMPOTENCY_KEY = "idem"
    """The idempotency key the item was enqueued with (absent: none)."""
    ITEM_MAX_ATTEMPTS = "imax"
    """The item's own attempt limit (absent: its engine's or the worker's default)."""
    CREATED = "created"
    """When the item was enqueued (server ms)."""

    # -- state
    STATE = "state"
    """The item's state (a ``WorkState`` value); its state index holds it too."""
    UPDATED = "updated"
    """When the state last changed (server ms); also its score in the state index."""
    FINISHED = "finished"
    """When the item finished (server ms), as versions before the compact finished meta kept
    it; no longer written (a finished item's ``updated`` is its finish) and deleted when the
    item leaves its terminal state."""
    FINAL_EVENT = "fev"
    """The stream id of the event that finished the item (its events end there)."""
    DUE = "due"
    """When a scheduled, retrying, waiting or awaiting item is due (server ms)."""
    QUEUED_DUE = "qdue"
    """The due time the item was promoted from (acquire reports the lateness, then drops it)."""
    DISPATCH = "disp"
    """The token of the item's current delivery; only while it is queued."""
    WAIT_COUNT = "wcount"
    """How many times in a row the item found a resource taken (its backoff grows)."""

    # -- steps and attempts
    STEP = "step"
    """The step of the latest snapshot."""
    VERSION = "v"
    """The latest snapshot's version (0: none yet)."""
    ATTEMPTS = "att"
    """Attempts of the current step so far (absent: 0; a done item keeps none)."""
    MAX_ATTEMPTS = "maxatt"
    """The attempt limit the current lease was granted under (a done item keeps none)."""
    LAST_OP = "op"
    """The op id of the last commit, fail or release applied (a repeat of it answers DUP)."""
    ERROR = "err"
    """The last failed attempt's ``ErrorInfo`` JSON."""
    PROGRESS = "prog"
    """The running step's latest progress report (JSON); dropped by its commit."""

    # -- the lease
    LEASE_TOKEN = "ltok"
    """The lease's token (absent: no lease)."""
    LEASE_EPOCH = "lep"
    """The fencing epoch: grows by one with every lease granted."""
    LEASE_WORKER = "lw"
    """The worker holding the lease."""
    LEASE_EXPIRES = "lexp"
    """When the lease expires (server ms); also its score in the queue's lease index."""
    CANCEL_REQUESTED = "cxl"
    """Set while a running item was cancelled and its holder has not let go yet."""

    # -- waiting for signals and approvals
    WAIT_SIGNALS = "wsig"
    """The signal names an awaiting item waits for, space-joined."""
    APPROVAL = "appr"
    """The approval request (JSON) an awaiting item waits on."""

    # -- pause
    PAUSE = "pause"
    """Why the item is paused ('operator' or 'budget'), or marked to pause while it runs."""
    PAUSED_STATE = "pst"
    """The state a paused item goes back to when resumed."""
    PAUSED_DUE = "pdue"
    """The due time a paused item goes back to when resumed."""

    # -- budgets
    STEPS_TAKEN = "nsteps"
    """Steps committed (counted against the step budget)."""
    SPENT = "spent"
    """Cost charged by the steps committed."""
    BUDGET_STEPS = "bsteps"
    """The step limit as an operator raised it (absent: the item's own)."""
    BUDGET_COST = "bcost"
    """The cost limit as an operator raised it (absent: the item's own)."""
    BUDGET_RUNTIME = "bruntime"
    """The runtime limit (ms) as an operator raised it (absent: the item's own)."""
    BUDGET_OVER = "bover"
    """Which limit the item went over ('steps', 'cost' or 'runtime'), while paused for it."""

    # -- child work
    PARENT_ID = "pid"
    """A child's parent work id."""
    PARENT_META = "pmeta"
    """A child's parent's meta key (as the spawning commit's KEYS carried it)."""
    PARENT_KIDS = "pkids"
    """A child's parent's kids-hash key."""
    PARENT_INDEX = "pidx"
    """A child's place in its parent's spawn order (1-based)."""
    KIDS_SPAWNED = "kn"
    """A parent's count of children spawned."""
    KIDS_FINISHED = "kfin"
    """A parent's count of children finished."""
    KIDS_WAIT = "kwait"
    """How many finished children an awaiting parent waits for."""


STATUS_FIELDS: tuple[Meta, ...] = (
    Meta.ENGINE,
    Meta.QUEUE,
    Meta.STATE,
    Meta.STEP,
    Meta.VERSION,
    Meta.ATTEMPTS,
    Meta.MAX_ATTEMPTS,
    Meta.ITEM_MAX_ATTEMPTS,
    Meta.PRIORITY,
    Meta.CREATED,
    Meta.UPDATED,
    Meta.DUE,
    Meta.LEASE_EPOCH,
    Meta.LEASE_WORKER,
    Meta.LEASE_EXPIRES,
    Meta.RESOURCES,
    Meta.IDEMPOTENCY_KEY,
    Meta.CANCEL_REQUESTED,
    Meta.ERROR,
    Meta.PROGRESS,
    Meta.WAIT_SIGNALS,
    Meta.APPROVAL,
    Meta.PAUSE,
    Meta.STEPS_TAKEN,
    Meta.SPENT,
    Meta.BUDGET_STEPS,
    Meta.BUDGET_COST,
    Meta.BUDGET_RUNTIME,
    Meta.BUDGET_OVER,
    Meta.PARENT_ID,
    Meta.KIDS_SPAWNED,
    Meta.KIDS_FINISHED,
    Meta.KIDS_WAIT,
)
"""The fields a status read needs (``HMGET`` order): what ``meta_from_hash`` reads."""
