"""Make the README's screenshot of ``dlm serve``'s page: the demo's Sudoku model, mid-run.

    dlm demo --out sudoku-model
    python docs/make_screenshot.py --model sudoku-model --out docs/serve-page.png

Starts ``dlm serve`` on a free port, opens the page in Debian's Chromium (Playwright), runs the
model's first held-out puzzle with a slow playback so the grid is caught half filled, and
saves the page as a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sudoku-model")
    parser.add_argument("--out", default="docs/serve-page.png")
    parser.add_argument("--chromium", default=os.environ.get("DLM_CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--fraction", type=float, default=0.5, help="how much of the canvas is filled")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "dlm.cli.main", "serve", "--model", args.model, "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        puzzle = json.loads(Path(args.model, "heldout.jsonl").read_text().splitlines()[0])["prompt"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 720})
            page.goto(url + "/")
            page.wait_for_function("document.getElementById('task-name').textContent !== ''")
            page.fill("#prompt", puzzle)
            page.fill("#delay", "400")
            page.click("#run")
            page.wait_for_function(
                f"window.dlmFrames.length > 0 && "
                f"(window.dlmFrames.at(-1).split('·').length - 1) <= "
                f"{1 - args.fraction} * window.dlmFrames.at(-1).length"
            )
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
