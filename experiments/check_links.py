"""Check that every relative link and image in Markdown files resolves (make docs-check).

    python3 experiments/check_links.py README.md docs

For each [text](target) and ![alt](target) whose target is not a URL: the file or folder exists
(relative to the page), and a #fragment names a heading of the page it points to (GitHub's
anchors: lower case, punctuation dropped, spaces as hyphens). Prints each broken link with its
page and line; exits 1 if there is one. Standard library only.
"""
import os
import re
import sys

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*```")


def anchors(path):
    """The anchors of a Markdown page's headings, as GitHub makes them (duplicates get -1, -2)."""
    seen, out = {}, set()
    in_code = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if FENCE.match(line):
                in_code = not in_code
            if in_code or not line.startswith("#"):
                continue
            text = line.lstrip("#").strip().lower()
            text = re.sub(r"[`*_]", "", text)
            slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(path):
    """(line number, target) of each link outside code blocks and inline code."""
    in_code = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if FENCE.match(line):
                in_code = not in_code
                continue
            if in_code:
                continue
            for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
                yield number, target


def pages(arguments):
    for argument in arguments:
        if os.path.isdir(argument):
            for root, _, files in os.walk(argument):
                yield from (os.path.join(root, f) for f in sorted(files) if f.endswith(".md"))
        else:
            yield argument


def main(arguments):
    broken, checked = [], 0
    for page in pages(arguments):
        for number, target in links(page):
            if re.match(r"^[a-z]+:", target):
                continue  # a URL (https:, mailto:): not checked here
            checked += 1
            file_part, _, fragment = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(page), file_part)) if file_part else page
            if not os.path.exists(resolved):
                broken.append(f"{page}:{number}: {target}: no such file {resolved}")
            elif fragment and resolved.endswith(".md") and fragment not in anchors(resolved):
                broken.append(f"{page}:{number}: {target}: no heading '#{fragment}' in {resolved}")
    for line in broken:
        print("docs-check: " + line)
    print(f"docs-check: {checked - len(broken)} of {checked} relative links and images resolve")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["README.md", "docs"]))
