"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = re.findall(r"^```python\n(.*?)^```$", README.read_text(), flags=re.MULTILINE | re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    # dont_inherit: the example runs as a user would, without this file's __future__ imports.
    exec(compile(code, str(README), "exec", dont_inherit=True), {"__name__": "readme"})
    out = capsys.readouterr().out
    # `print(...)  # shown: why` promises that "shown" is printed.
    promised = [c.split(":")[0].strip() for c in re.findall(r"^print\(.*\)\s+#\s*(.+)$", code, re.MULTILINE)]
    assert promised, "an example should say what it prints"
    for text in promised:
        assert text in out
