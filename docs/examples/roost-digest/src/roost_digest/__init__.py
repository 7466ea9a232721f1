"""A Roost engine that digests texts, one per step, and writes a Markdown report."""
