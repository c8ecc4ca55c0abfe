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


def _html_table(t: Table) -> str:
    """One table; wider than the page it scrolls sideways with its first (lead) column held in place."""
    head = "".join(f"<th>{_inline(h)}</th>" for h in t.header)
    head = f"<thead><tr>{head}</tr></thead>" if any(h.strip() for h in t.header) else ""  # a facts table: none
    body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in t.rows)
    cls = f' class="{t.css}"' if t.css else ""
    note = f'<p class="note">{_inline(t.note)}</p>' if t.note else ""
    return f'<div class="wide"><table{cls}>{head}<tbody>{body}</tbody></table></div>{note}'


@dataclass
class Table:
    """A table of strings (the leaderboard views, the bench summary): markdown here, HTML in :func:`to_html`."""

    header: list[str]
    rows: list[list[str]]
    css: str = ""  # an HTML class: "facts" for a two-column table of fields and values
    note: str = ""  # a line under the table (the columns it left out, marks it uses)

    def markdown(self) -> str:
        """A GitHub-flavoured markdown table."""
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines) + "\n" + (f"\n{self.note}\n" if self.note else "")


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Caveat:
    """A warning the reader must see before the numbers: a box in HTML, a quoted block in markdown."""

    text: str


@dataclass
class Figure:
    path: Path
    caption: str
    frames: bool = False  # frame strips and GIFs: scaled without smoothing, so pixels stay pixels


Item = Heading | Para | Caveat | Table | Figure


def to_markdown(items: list[Item], base: Path) -> str:
    """Markdown next to its figures: images are linked relative to ``base`` (the report's folder)."""
    out = []
    for it in items:
        if isinstance(it, Heading):
            out.append("#" * it.level + " " + it.text)
        elif isinstance(it, Para):
            out.append(it.text.strip())
        elif isinstance(it, Caveat):
            out.append("> ⚠ " + it.text.strip().replace("\n", "\n> "))
        elif isinstance(it, Table):
            out.append(it.markdown().strip())
        else:
            out.append(f"![{it.caption}]({Path(os.path.relpath(it.path, base)).as_posix()})\n\n*{it.caption}*")
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escaped text with the markdown the report writes: `code`, **strong** and *emphasis*."""
    out = html.escape(text.strip())
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<em>\1</em>", out)


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".gif": "image/gif"}[path.suffix]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{_inline(line)}</p>" for line in text.strip().splitlines() if line.strip())


def _html_item(it: Item) -> str:
    if isinstance(it, Heading):
        return f"<h{it.level}>{html.escape(it.text)}</h{it.level}>"
    if isinstance(it, Para):
        return _paragraphs(it.text)
    if isinstance(it, Caveat):
        return f'<div class="caveat">{_paragraphs(it.text)}</div>'
    if isinstance(it, Table):
        return _html_table(it)
    cls = ' class="frames"' if it.frames else ""
    return (
        f'<figure><img{cls} src="{_data_uri(it.path)}" alt="{html.escape(it.caption)}">'
        f"<figcaption>{_inline(it.caption)}</figcaption></figure>"
    )


CSS = (
    "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}"
    "table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "th:first-child,td:first-child{text-align:left;position:sticky;left:0;background:#fff}"
    "th{background:#f3f3f3;white-space:normal;max-width:11em}th:first-child{background:#f3f3f3}"
    "td{white-space:nowrap}.wide{overflow-x:auto;margin:0 0 .6em}"
    "table.facts td{white-space:normal;text-align:left;max-width:60em}table.facts td:first-child{white-space:nowrap}"
    "img{max-width:100%;height:auto}img.frames{image-rendering:pixelated}figure{margin:1em 0}"
    "figcaption{font-size:13px;color:#555;max-width:60em}code{background:#f3f3f3;padding:0 3px}"
    ".caveat{border-left:5px solid #d98b00;background:#fff6e0;padding:.2em 1em;margin:.6em 0}"
    ".caveat p{margin:.4em 0}p.note{font-size:13px;color:#555;margin:.2em 0 1em}"
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
