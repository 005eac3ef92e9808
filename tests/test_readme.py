"""The README opens with the two fresh-machine commands, and CI runs the second verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_opens_with_demo_and_test_commands():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)
    demo, tests = blocks[0].strip(), blocks[1].strip()
    assert demo.endswith("dlm demo") and "pip install -e ." in demo
    assert tests.endswith("python -m pytest") and '".[test]"' in tests
    first_code = text.index("```bash")
    assert "dlm" in text[:first_code] and text[:first_code].count("\n") < 6
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines()
