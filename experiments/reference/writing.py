"""What the reference benchmarks share: the commit they ran at, and writing their Markdown table
and raw numbers atomically (results/<name>.md and results/<name>.json)."""
import json
import os
import subprocess


def commit():
    """(short commit, whether the code differs from it): results and docs change while a
    benchmark is written up, so only other files count."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)results",
                            ":(top,exclude)docs"], capture_output=True, text=True).stdout.strip()
    return head, bool(dirty)


def write(out, lines, numbers):
    """`lines` to `out` (Markdown) and `numbers` to its .json beside it, each through a temporary
    file and a rename; prints the table."""
    text = "\n".join(lines) + "\n"
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.replace(out + ".tmp", out)
    stem = os.path.splitext(out)[0]
    with open(stem + ".json.tmp", "w") as f:
        json.dump(numbers, f, indent=1)
    os.replace(stem + ".json.tmp", stem + ".json")
    print(text)
