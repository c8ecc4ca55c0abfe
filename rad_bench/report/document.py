"""Report documents: headings, paragraphs, tables and figures as items, written as markdown (figures
linked next to it) and as one self-contained HTML page (inline CSS, images as data URIs, no scripts)."""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rad_bench.utils import atomic_write_text

HTML_MAX_COLS = 8  # columns per HTML table: a leaderboard row of "20.04 ± 0.56" cells fits 1280 px


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in t.rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


@dataclass
class Table:
    """A table of strings (the leaderboard views, the bench summary): markdown here, HTML in :func:`to_html`."""

    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        """A GitHub-flavoured markdown table."""
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in self.rows]) + "\n"

    def split(self, max_cols: int = HTML_MAX_COLS) -> list[Table]:
        """Tables of at most ``max_cols`` columns, the first (lead) column repeated in each, so a wide
        leaderboard fits a page as several stacked tables instead of scrolling off its right edge."""
        step = max(1, max_cols - 1)
        return [
            Table([self.header[0], *self.header[i : i + step]], [[r[0], *r[i : i + step]] for r in self.rows])
            for i in range(1, max(2, len(self.header)), step)
        ]


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Figure:
    path: Path
    caption: str


Item = Heading | Para | Table | Figure


def to_markdown(items: list[Item], base: Path) -> str:
    """Markdown next to its figures: images are linked relative to ``base`` (the report's folder)."""
    out = []
    for it in items:
        if isinstance(it, Heading):
            out.append("#" * it.level + " " + it.text)
        elif isinstance(it, Para):
            out.append(it.text.strip())
        elif isinstance(it, Table):
            out.append(it.markdown().strip())
        else:
            out.append(f"![{it.caption}]({Path(os.path.relpath(it.path, base)).as_posix()})\n\n*{it.caption}*")
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text.strip()))


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".gif": "image/gif"}[path.suffix]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _html_item(it: Item) -> str:
    if isinstance(it, Heading):
        return f"<h{it.level}>{html.escape(it.text)}</h{it.level}>"
    if isinstance(it, Para):
        return "".join(f"<p>{_inline(line)}</p>" for line in it.text.strip().splitlines())
    if isinstance(it, Table):
        return "".join(_html_table(part) for part in it.split())
    cap = html.escape(it.caption)
    return f'<figure><img src="{_data_uri(it.path)}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'


CSS = (
    "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3;white-space:normal;max-width:11em}"
    "td{white-space:nowrap}.wide{overflow-x:auto;margin:0 0 .6em}"
    "img{max-width:100%;image-rendering:pixelated}figure{margin:1em 0}figcaption{font-size:13px;color:#555}"
    "code{background:#f3f3f3;padding:0 3px}"
)


def to_html(items: list[Item], title: str) -> str:
    """One self-contained page: inline CSS, images as data URIs, no scripts, no external links."""
    body = "\n".join(_html_item(it) for it in items)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def write_documents(out: Path, title: str, items: list[Item]) -> None:
    """report.md and report.html of ``items`` into ``out``."""
    atomic_write_text(out / "report.md", f"# {title}\n\n" + to_markdown(items, out))
    atomic_write_text(out / "report.html", to_html(items, title))
