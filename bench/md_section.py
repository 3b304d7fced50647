"""Rewrites one script-owned section of a markdown page (docs/bench.md).

Each benchmark script owns the text between `<!-- NAME begin -->` and `<!-- NAME end -->` and
rewrites only that; everything outside the markers (hand-written notes, other scripts'
sections) stays as it is. A page without the markers gets the section appended, markers
included, so the next run finds it.

    from md_section import write_section      # sys.path: the bench/ directory
    write_section("docs/bench.md", "compare", text)
or  python3 bench/md_section.py docs/bench.md compare < text.md
"""
import os
import sys


def write_section(path, name, text):
    begin, end = f"<!-- {name} begin -->", f"<!-- {name} end -->"
    body = f"{begin}\n{text.strip(chr(10))}\n{end}"
    try:
        with open(path) as f:
            page = f.read()
    except FileNotFoundError:
        page = ""
    i, j = page.find(begin), page.find(end)
    if i >= 0 and j > i:
        page = page[:i] + body + page[j + len(end):]
    else:
        page = page.rstrip("\n") + ("\n\n" if page.strip() else "") + body + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(page)
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: md_section.py FILE NAME < section.md")
    write_section(sys.argv[1], sys.argv[2], sys.stdin.read())
