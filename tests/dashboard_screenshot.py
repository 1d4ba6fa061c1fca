"""Take docs/img/dashboard.png: the dashboard of a real `spaceactors run`, in headless Chromium.

    .venv/bin/python tests/dashboard_screenshot.py [OUT.png] [SCENARIO [RUN OPTIONS...]]

Defaults: docs/img/dashboard.png, trade-route on the wall clock at 60x (its shock and crash
come within a minute). The shot is taken once the run has restarted an actor (or after 90 s).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from browser import chromium, get_json
from observed_run import observed_command

ROOT = Path(__file__).resolve().parent.parent


def main(arguments: list[str]) -> None:
    out = Path(arguments[0]) if arguments else ROOT / "docs" / "img" / "dashboard.png"
    run = arguments[1:] or ["trade-route", "--clock", "wall", "--speed", "60"]
    with observed_command(*run) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 820})
        page.goto(url)
        deadline = time.monotonic() + 90
        while get_json(url + "status")["totals"]["restarts"] == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(6)  # a few readings for the rate plot
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
