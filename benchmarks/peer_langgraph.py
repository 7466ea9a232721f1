"""The LangGraph peer: the benchmark workload as a LangGraph graph with its SQLite checkpointer.

``python -m benchmarks.peer_langgraph work sqlite:///PATH ...`` (see
:mod:`benchmarks.peer_proto`). An item is a thread of a one-node graph that loops ``steps``
times; LangGraph saves a checkpoint of the state after every super-step (its default
``async`` durability). LangGraph has no queue and no worker: the program runs items
``concurrency`` at a time with ``asyncio.gather``. On a restart it does what a user has to:
asks the checkpointer for every item's state, resumes the unfinished ones (``ainvoke(None)``),
first those that had started, and starts the rest.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any, TypedDict

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph

from benchmarks.peer_proto import Progress, parse_args, report

PROGRESS = Progress()


class ItemState(TypedDict):
    item: int
    n: int
    pad: str


def build(saver: AsyncSqliteSaver, steps: int, pause: float) -> Any:
    async def step(state: ItemState) -> dict[str, Any]:
        if pause:
            await asyncio.sleep(pause)
        n = state["n"] + 1
        PROGRESS.step(state["item"], n)
        return {"n": n}

    def after(state: ItemState) -> str:
        return END if state["n"] >= steps else "step"

    graph = StateGraph(ItemState)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", after)
    return graph.compile(checkpointer=saver)


def config(item: int) -> Any:
    return {"configurable": {"thread_id": str(item)}}


async def plan(graph: Any, items: int) -> list[tuple[int, bool]]:
    """(item, resume?) for every unfinished item: those under way first."""
    under_way: list[tuple[int, bool]] = []
    fresh: list[tuple[int, bool]] = []
    for item in range(items):
        state = await graph.aget_state(config(item))
        if not state.values:
            fresh.append((item, False))
        elif state.next:
            under_way.append((item, True))
    return under_way + fresh


async def work(argv: list[str]) -> None:
    args = parse_args(argv)
    PROGRESS.open(args)
    async with aiosqlite.connect(args.url.removeprefix("sqlite:///")) as conn:
        if not args.fsync:
            # Commits reach the OS at once and the disk at WAL checkpoints, as Redis with
            # appendfsync everysec does, instead of an fsync per commit.
            await conn.execute("PRAGMA synchronous=NORMAL")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        graph = build(saver, args.steps, args.pause)
        todo = await plan(graph, args.items)
        PROGRESS.total = len(todo)
        limit = asyncio.Semaphore(args.concurrency)

        async def run(item: int, resume: bool) -> None:
            async with limit:
                PROGRESS.started()
                start = None if resume else {"item": item, **args.state()}
                await graph.ainvoke(start, config(item))
                PROGRESS.finished()

        report(event="ready", items=len(todo))
        await asyncio.gather(*(run(item, resume) for item, resume in todo))
        report(event="done", **PROGRESS.summary())
        await asyncio.to_thread(threading.Event().wait)  # the parent stops this process


def main(argv: list[str]) -> None:
    if argv[:1] == ["enqueue"]:
        report(event="enqueued")  # no queue: the work program knows its items
        return
    asyncio.run(work(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
