"""The page, in headless Chromium (Debian's, driven by Playwright's Python API): it loads, runs a
prompt, shows the canvas changing over several steps, and its screenshot is not blank."""

from __future__ import annotations

import os
import shutil

import pytest

from dlm.serve import ServeConfig, create_app
from serve_helpers import running_server, text_model, text_tokenizer

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("DLM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (apt-get install chromium)"
)
#: what the probe of this machine found Chromium needs with no network and as root
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def _canvas_states(page, steps: int) -> list[str]:
    """The canvas text each time it changes, until the run ends."""
    seen: list[str] = []
    for _ in range(2000):
        text = page.inner_text("#canvas")
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        if page.evaluate("document.body.dataset.done") is not None:
            break
        page.wait_for_timeout(15)
    return seen


def _non_blank_png(path) -> None:
    from PIL import Image

    assert path.stat().st_size > 5_000
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 20  # drawn text and cells, not one flat colour


def test_the_page_runs_a_prompt_and_draws_the_canvas_denoising(browser, tmp_path):
    model, tokenizer = text_model(), text_tokenizer()
    app = create_app(model, tokenizer, ServeConfig(model_name="tiny-page"))
    with running_server(app) as url:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(url + "/")
        page.wait_for_function("document.getElementById('model-name').textContent === 'tiny-page'")
        page.fill("#prompt", "abc12")
        page.fill("#max_tokens", "12")
        page.fill("#steps", "6")
        page.fill("#delay", "150")
        page.click("#run")
        states = _canvas_states(page, 6)
        page.wait_for_function("document.body.dataset.done !== undefined")
        frames = page.evaluate("window.dlmFrames")
        assert len(frames) == 6
        masks = [f.count("·") for f in frames]
        assert masks == sorted(masks, reverse=True) and masks[0] > masks[-1] == 0
        assert len(states) >= 3  # the page itself showed at least three different canvases
        assert page.inner_text("#stat-nfe") == "6"
        assert page.locator("#canvas .cell").count() == 12
        # the page's final text is the API's completion for the same settings
        import httpx

        body = {"prompt": "abc12", "max_tokens": 12, "steps": 6, "policy": "confidence",
                "cache": "none", "temperature": 0}
        want = httpx.post(url + "/v1/completions", json=body).json()["choices"][0]["text"]
        assert page.inner_text("#output") == want
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        _non_blank_png(shot)
        assert not errors


def test_a_sudoku_model_is_drawn_as_its_grid(browser):
    from dlm.tasks import get_task

    task = get_task("sudoku", box_rows=2, box_cols=2)
    tokenizer = task.tokenizer()
    model = text_model(max_positions=64, tokenizer=tokenizer)
    app = create_app(model, tokenizer, ServeConfig(), task=task)
    with running_server(app) as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_function("document.getElementById('task-name').textContent === 'task: sudoku'")
        page.fill("#prompt", "0120201013004200")
        page.fill("#max_tokens", "17")
        page.fill("#delay", "0")
        page.click("#run")
        page.wait_for_function("document.body.dataset.done !== undefined")
        cells = page.locator("#board td")
        assert cells.count() == 16
        assert page.locator("#board td.given").count() == 8  # the prompt's non-zero digits
        assert page.locator("#board td.mask").count() == 0  # every blank filled in
        prompt, answer = "0120201013004200", page.inner_text("#output")
        assert page.inner_text("#rendered") == task.render(prompt, answer).strip()
