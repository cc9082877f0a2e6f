"""Screenshot a gankit report in headless chromium, for the README.

    python benchmarks/report_screenshot.py sweeps/mode-collapse/report.html docs/img/report-mode-collapse.png

Uses Debian's /usr/bin/chromium through playwright, as the browser test does. --height crops
the page (the full page of a 50-run report is very tall); --width is the browser window's.
"""

from __future__ import annotations

import argparse
import shutil
from io import BytesIO
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=2400, help="crop the page to this many pixels")
    parser.add_argument("--scale", type=float, default=0.6, help="shrink the PNG by this factor")
    parser.add_argument("--colors", type=int, default=128, help="palette size, to keep the PNG small")
    args = parser.parse_args()
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        page.goto(args.report.resolve().as_uri())
        png = page.screenshot(full_page=True)
        browser.close()
    image = Image.open(BytesIO(png))
    image = image.crop((0, 0, image.width, min(image.height, args.height)))
    image = image.resize((int(image.width * args.scale), int(image.height * args.scale)), Image.Resampling.LANCZOS)
    image = image.convert("RGB").quantize(colors=args.colors, method=Image.Quantize.MEDIANCUT)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(f"wrote {args.out} ({image.width}x{image.height})")


if __name__ == "__main__":
    main()
