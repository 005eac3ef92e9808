"""``dlm eval lm-eval``: EleutherAI's lm-evaluation-harness with the ``dlm`` model registered.

    dlm eval lm-eval --model dlm --model_args pretrained=DIR,mc_num=128,batch_size=64 \\
        --tasks hellaswag,arc_easy [--include_path my_tasks/] [any other lm-eval flag]

lm-eval only knows the models in its own registry and has no plugin entry point, so the
plain ``lm_eval --model dlm`` cannot find ours. ``run_lm_eval`` imports
``dlm.evaluation.lm_eval_adapter`` (which registers ``dlm``) and then runs lm-eval's own
command line on ``argv``, unchanged: every lm-eval flag and subcommand works.

lm-eval logs a warning and carries on when it cannot save its results, so ``--output_path``
(``-o``) is checked first, before any model loads: a ``.json`` path as a file (``dlm``'s
``--json`` rules), any other as the folder lm-eval writes its results under.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dlm.errors import DlmUserError

__all__ = ["check_lm_eval_output", "run_lm_eval", "main"]


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _output_paths(args: list[str]) -> list[str]:
    """The values of lm-eval's ``--output_path`` / ``-o`` flags in ``args``."""
    paths = []
    for i, arg in enumerate(args):
        if arg in ("--output_path", "-o") and i + 1 < len(args):
            paths.append(args[i + 1])
        elif arg.startswith("--output_path="):
            paths.append(arg.split("=", 1)[1])
    return paths


def check_lm_eval_output(args: list[str]) -> None:
    """Refuse an ``--output_path`` lm-eval could not write its results to (see the module)."""
    from .common import check_output_dir, check_output_path

    for path in _output_paths(args):
        if path.endswith(".json"):
            check_output_path(path, "--output_path")
        else:
            check_output_dir(path, "--output_path")


def run_lm_eval(argv: Sequence[str] | None = None) -> int:
    """Run lm-eval's CLI on ``argv`` (default: ``sys.argv[1:]``) with ``dlm`` registered."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        check_lm_eval_output(args)
    except DlmUserError as err:
        print(f"dlm eval lm-eval: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    try:
        from lm_eval.__main__ import cli_evaluate

        import dlm.evaluation.lm_eval_adapter  # noqa: F401  (registers the "dlm" model)
    except ImportError as err:
        print(f"dlm eval lm-eval: error: {err}", file=sys.stderr)
        return 2
    saved = sys.argv
    sys.argv = ["lm-eval", *args]  # lm-eval's CLI reads sys.argv itself
    try:
        cli_evaluate()
    except SystemExit as done:
        return _exit_code(done.code)
    except DlmUserError as err:  # a bad model_arg, a checkpoint that is not one, ...
        print(f"dlm eval lm-eval: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except _OFFLINE as err:  # the task's data set is not cached and the Hub is unreachable
        print(
            f"dlm eval lm-eval: error: {' '.join(str(err).split())}: lm-eval downloads each "
            "task's data set from the Hugging Face Hub; run where the Hub is reachable, or fill "
            "the datasets cache first (HF_DATASETS_OFFLINE=1 then reads it)",
            file=sys.stderr,
        )
        return 2
    finally:
        sys.argv = saved
    return 0


def _offline_errors() -> tuple[type[BaseException], ...]:
    """The errors a download raises without a network: the built-in ``ConnectionError``
    (``datasets``) and ``requests``' own."""
    try:
        from requests.exceptions import ConnectionError as RequestsConnectionError
    except ImportError:
        return (ConnectionError,)
    return (ConnectionError, RequestsConnectionError)


_OFFLINE = _offline_errors()


def main() -> None:
    """Console-script entry point (e.g. ``dlm-lm-eval = "dlm.cli.eval_lm:main"``)."""
    sys.exit(run_lm_eval())


if __name__ == "__main__":
    main()
