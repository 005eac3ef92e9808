"""Ordinary programs run in the sandbox as they would anywhere: output, stdin, files, the
standard library, exceptions and exit codes are reported exactly."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from dlm.sandbox import SandboxInputError, Status, isolation, run_python
from dlm.sandbox.bootstrap import LAYERS


def test_a_normal_program_prints_its_result():
    result = run_python("print(sum(range(10)))\n")
    assert result.status is Status.OK and result.ok
    assert (result.returncode, result.signal) == (0, None)
    assert (result.stdout, result.stderr, result.truncated) == ("45\n", "", False)
    assert 0 < result.seconds < 2 and result.cpu_seconds > 0


def test_stdin_is_the_programs_standard_input():
    result = run_python("import sys\nprint(sys.stdin.read().upper())", stdin="hello\nworld")
    assert result.stdout == "HELLO\nWORLD\n"
    assert run_python("print(input())", stdin=b"bytes too\n").stdout == "bytes too\n"


def test_files_are_placed_beside_the_program_and_importable():
    files = {"helper.py": "def double(x):\n    return 2 * x\n", "data/numbers.json": "[1, 2, 3]"}
    source = (
        "import json, helper\n"
        "print([helper.double(n) for n in json.load(open('data/numbers.json'))])"
    )
    result = run_python(source, files=files)
    assert result.status is Status.OK, result.stderr
    assert result.stdout == "[2, 4, 6]\n"


def test_the_standard_library_imports():
    source = textwrap.dedent(
        """
        import json, math, collections, re, itertools, functools, heapq, bisect, string
        import fractions, decimal, statistics, hashlib, dataclasses, typing, random, datetime
        counts = collections.Counter("abracadabra")
        print(json.dumps({"pi": round(math.pi, 3), "top": counts.most_common(1)[0][0],
                          "words": re.findall(r"[a-z]+", "ab, cd"),
                          "pairs": len(list(itertools.combinations(range(5), 2))),
                          "md5": hashlib.md5(b"x").hexdigest()[:6]}))
        """
    )
    result = run_python(source)
    assert result.status is Status.OK, result.stderr
    assert json.loads(result.stdout) == {
        "pi": 3.142, "top": "a", "words": ["ab", "cd"], "pairs": 10, "md5": "9dd4e4",
    }


def test_an_exception_is_reported_with_its_traceback_and_exit_code_1():
    result = run_python("def f(x):\n    return 1 / x\n\nf(0)\n")
    assert result.status is Status.ERROR and result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):\n  File \"main.py\"")
    assert result.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "bootstrap" not in result.stderr  # the sandbox's own frames are left out


def test_a_syntax_error_is_reported():
    result = run_python("def broken(:\n    pass\n")
    assert result.status is Status.ERROR and result.returncode == 1
    assert "SyntaxError" in result.stderr and 'File "main.py", line 1' in result.stderr


@pytest.mark.parametrize(("code", "returncode"), [("sys.exit(3)", 3), ("exit(0)", 0),
                                                  ("quit(5)", 5), ("os._exit(7)", 7)])
def test_exit_codes_come_back(code, returncode):
    result = run_python(f"import os, sys\nprint('before')\n{code}\nprint('after')")
    assert result.returncode == returncode
    assert result.status is (Status.OK if returncode == 0 else Status.ERROR)
    assert result.stdout.startswith("before")


def test_the_program_may_write_in_its_own_folder_and_the_folder_is_removed_afterwards():
    source = textwrap.dedent(
        """
        import os, tempfile, pathlib
        os.makedirs("a/b")
        pathlib.Path("a/b/c.txt").write_text("inside")
        fd, name = tempfile.mkstemp()
        os.write(fd, b"temp"); os.close(fd)
        os.rename(name, "moved")
        print(os.getcwd(), open("a/b/c.txt").read(), open("moved").read(), sorted(os.listdir(".")))
        """
    )
    result = run_python(source)
    folder, *rest = result.stdout.split(maxsplit=3)
    assert result.status is Status.OK, result.stderr
    assert rest[:2] == ["inside", "temp"]
    assert rest[2].strip() == "['a', 'main.py', 'moved']"
    assert not Path(folder).exists() and not Path(folder).parent.exists()


def test_unicode_output_survives():
    assert run_python("print('naïve ✓ 漢字')").stdout == "naïve ✓ 漢字\n"


def test_isolation_reports_every_layer_and_root_gets_them_all():
    layers = isolation()
    assert list(layers) == list(LAYERS)
    assert layers["rlimits"] and layers["audit_guard"]
    if os.geteuid() == 0 and layers["mount_namespace"]:
        assert all(on for name, on in layers.items() if name != "user_namespace")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"source": b"print(1)"}, "must be Python source text"),
        ({"source": "", "stdin": 3}, "stdin must be text or bytes"),
        ({"source": "", "files": {"/etc/x": ""}}, "must be a relative path"),
        ({"source": "", "files": {"../x": ""}}, "must be a relative path"),
        ({"source": "", "files": {"main.py": ""}}, "main.py is the program itself"),
        ({"source": "", "files": {"x": 3}}, "must hold text or bytes"),
    ],
)
def test_bad_input_is_a_one_line_error(kwargs, words):
    source = kwargs.pop("source")
    with pytest.raises(SandboxInputError, match=words):
        run_python(source, **kwargs)


def test_a_program_exiting_with_the_setup_code_is_an_ordinary_error():
    result = run_python("import sys\nsys.exit(114)")  # bootstrap.EXIT_SETUP
    assert (result.status, result.returncode) == (Status.ERROR, 114)


def test_a_layer_that_fails_to_come_up_raises_instead_of_running_the_program(monkeypatch):
    if not isolation()["mount_namespace"]:
        pytest.skip("this machine gives no mount namespace")
    from dlm.sandbox import SandboxSetupError, runner

    monkeypatch.setattr(runner, "_interpreter_folders", lambda: ("/no/such/folder",))
    with pytest.raises(SandboxSetupError, match="setup failed: FileNotFoundError"):
        run_python("print('must not run')")
