"""The digest engine: counts the words of one text per step, then writes a report."""

from __future__ import annotations

from roost.runtime import PermanentError, Snapshot, WorkItem, step_context


class DigestEngine:
    """Digests ``payload["texts"]`` (a list of strings), one text per step."""

    engine_id = "digest"
    max_attempts = 5  # a step that raises is tried 5 times before the item is dead

    def __init__(self, *, max_texts: int) -> None:
        self.max_texts = max_texts

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        """Check the payload: a bad one fails the item at once, without retries."""
        texts = item.payload.get("texts")
        if not isinstance(texts, list) or not texts:
            raise PermanentError("the payload needs 'texts': a non-empty list of strings")
        if not all(isinstance(text, str) for text in texts):
            raise PermanentError("every entry of 'texts' must be a string")
        if len(texts) > self.max_texts:
            raise PermanentError(f"at most {self.max_texts} texts, got {len(texts)}")
        return Snapshot(
            work_id=item.work_id,
            engine=self.engine_id,
            step="digest",
            data={"done": 0, "words": []},
        )

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        """Digest the next text; after the last one, write the report and finish."""
        ctx = step_context()
        texts: list[str] = item.payload["texts"]
        done: int = snapshot.data["done"]
        # Everything new derives from the snapshot given: running this step twice from the
        # same snapshot gives the same result.
        words: list[int] = [*snapshot.data["words"], len(texts[done].split())]
        data = {"done": done + 1, "words": words}
        await ctx.progress((done + 1) / len(texts), f"text {done + 1} of {len(texts)}")
        if done + 1 < len(texts):
            return snapshot.model_copy(update={"data": data, "next_step_delay_seconds": 0.5})
        lines = [f"- text {n}: {count} words" for n, count in enumerate(words, start=1)]
        report = "# Digest\n\n" + "\n".join(lines) + "\n"
        artifact = await ctx.put_artifact(report, kind="md", metadata={"texts": len(texts)})
        return snapshot.model_copy(
            update={
                "data": data,
                "step": "done",
                "is_finished": True,
                "next_step_delay_seconds": 0.0,
                "artifacts": [*snapshot.artifacts, artifact],
            }
        )


def build_engine(*, max_texts: int = 100) -> DigestEngine:
    """Build the engine; Roost calls it with no arguments, tests may pass some."""
    return DigestEngine(max_texts=max_texts)
