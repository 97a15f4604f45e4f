"""Run matrices, per-run metrics, invariant checkers and fuzzing (arriving with later issues)."""

__all__: list[str] = []
