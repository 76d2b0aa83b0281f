"""The palette studio's page in headless Chromium (the system's `chromium` and `chromedriver`, driven by
Selenium): what the browser test and the latency benchmark do on it."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd

TABS = ("Compose", "Edit", "Interpolate", "Faces")


class BrowserMissing(RuntimeError):
    """No Chromium, chromedriver or Selenium here; the message says what to install."""


class Page:
    """The studio at `url`, loaded and ready (its Generate button shown) in a fresh headless Chromium."""

    def __init__(self, url: str, timeout: float = 60, size: tuple[int, int] = (1400, 1600)):
        missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError:
            missing.append("selenium (pip install -e \".[test]\")")
        if missing:
            raise BrowserMissing(f"no {', '.join(missing)} on this machine; install them with "
                                 f"`apt-get install -y chromium chromium-driver` (as .ci/run does)")
        options = webdriver.ChromeOptions()
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         f"--window-size={size[0]},{size[1]}"):
            options.add_argument(argument)
        self.timeout = timeout
        started = time.perf_counter()
        self.driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        self.driver.get(url)
        self.wait(lambda: self.find("#compose-button"))
        self.load_seconds = time.perf_counter() - started

    def __enter__(self) -> "Page":
        return self

    def __exit__(self, *_) -> None:
        self.driver.quit()

    def find(self, css: str) -> list:
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, condition, timeout: float | None = None):
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.driver, timeout or self.timeout, poll_frequency=0.05).until(lambda _: condition())

    def set_slider(self, class_name: str, value: float) -> None:
        """Types `value` into the number box of a class's slider and leaves it (which fires its change)."""
        from selenium.webdriver.common.keys import Keys
        box = self.find(f"#class-{class_name.replace(' ', '-')} input[type=number]")[0]
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(str(value), Keys.TAB)

    def value(self, elem_id: str) -> str:
        return self.find(f"#{elem_id} textarea")[0].get_attribute("value")

    def type(self, elem_id: str, text: str) -> None:
        from selenium.webdriver.common.keys import Keys
        box = self.find(f"#{elem_id} textarea")[0]
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(text)

    def click(self, elem_id: str) -> None:
        self.find(f"#{elem_id}")[0].click()

    def table(self, elem_id: str) -> pd.DataFrame:
        """The rows a Dataframe output shows (it renders those in view), indexed by its first column."""
        def read():
            cells = {}
            for cell in self.find(f"#{elem_id} [data-testid^='cell-']"):
                _, row, column = cell.get_attribute("data-testid").split("-")
                cells[int(row), int(column)] = cell.text
            if not cells:
                return None
            rows, columns = 1 + max(r for r, _ in cells), 1 + max(c for _, c in cells)
            headers = [h.text for h in self.find(f"#{elem_id} [role='columnheader']")][:columns]
            frame = pd.DataFrame([[cells.get((r, c), "") for c in range(columns)] for r in range(rows)],
                                 columns=headers if len(headers) == columns else None)
            frame = frame.set_index(frame.columns[0]).apply(pd.to_numeric)
            return [frame]  # in a list: the wait tests its result's truth
        return self.wait(read)[0]

    def image_sizes(self, elem_id: str) -> list[tuple[int, int]]:
        """Natural sizes of the images an output shows, once they have loaded."""
        def sizes():
            images = self.find(f"#{elem_id} img")
            found = [(int(i.get_attribute("naturalWidth")), int(i.get_attribute("naturalHeight"))) for i in images]
            return found if found and all(w > 0 for w, _ in found) else None
        return self.wait(sizes)

    def wait_for_text(self, text: str) -> bool:
        return bool(self.wait(lambda: text in self.find("body")[0].text))

    def open_tab(self, name: str) -> bool:
        """Shows a tab by its title; False when the page has no such tab (Faces outside the faces pipeline)."""
        buttons = [b for b in self.find("button[role='tab']") if b.text.strip() == name]
        if buttons:
            buttons[0].click()
            time.sleep(0.5)  # the tab's components render
        return bool(buttons)

    def screenshots(self, folder: Path, clicks: dict[str, str] | None = None, tabs: tuple[str, ...] = TABS
                    ) -> list[Path]:
        """A PNG of each of the `tabs` the page has, `<tab>.png` in `folder`; on tabs named in `clicks`, that
        button is pressed first and its outputs awaited."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for tab in tabs:
            if not self.open_tab(tab):
                continue
            if clicks and tab in clicks:
                self.click(clicks[tab])
                self.wait(lambda: not self.find(".progress-text, .eta-bar"))
                time.sleep(1)
            path = folder / f"{tab.lower()}.png"
            self.driver.save_screenshot(str(path))
            written.append(path)
        self.open_tab(TABS[0])
        return written
