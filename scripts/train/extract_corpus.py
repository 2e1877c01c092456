"""Builds the training text of the default model from the Python 3.11
documentation sources that Debian's python3.11-doc package ships as plain
reStructuredText (/usr/share/doc/python3.11/html/_sources/**/*.rst.txt,
PSF License Version 2).

Deterministic: documents are read in sorted path order and lightly cleaned of
reST markup (roles, bookkeeping directives, heading underlines). Every 20th
document (index % 20 == 10) is held out for evaluation.

Writes OUT/train.txt and OUT/heldout.txt, documents separated by the
<|endoftext|> marker, and OUT/documents.json listing which file went where.

usage: python3 extract_corpus.py [--sources DIR] [--out DIR]
"""

import argparse
import json
import os
import re

SOURCES = "/usr/share/doc/python3.11/html/_sources"
SEPARATOR = "<|endoftext|>"
HELD_OUT_EVERY = 20
HELD_OUT_PHASE = 10
# Release notes of every version are mostly lists of issue numbers.
EXCLUDED = {"whatsnew/changelog.rst.txt"}

ROLE = re.compile(r":[a-z][a-z:+-]*:`~?!?([^`<]*?)\s*(?:<[^`>]*>)?`")
LINK = re.compile(r"`([^`<]+?)\s*<[^`>]*>`_+")
LITERAL = re.compile(r"``([^`]+)``")
ADORNMENT = re.compile(r"^\s*([=\-~^*#\"'`+.:_])\1{2,}\s*$")
SKIPPED_DIRECTIVE = re.compile(
    r"^\s*\.\. (index|moduleauthor|sectionauthor|highlight|testsetup|testcleanup|toctree|"
    r"currentmodule|module|include|only|raw|tabularcolumns|impl-detail|audit-event|"
    r"availability|literalinclude|image|figure|_[^:]*|\|[^|]*\|)::?"
)
DIRECTIVE = re.compile(r"^(\s*)\.\. [a-z:-]+:: ?(.*)$")
FIELD = re.compile(r"^\s*:(synopsis|platform|noindex|deprecated|maxdepth|numbered|module|"
                   r"options|no-contents-entry|no-index|nosignatures|type|value):")


def clean(text):
    out = []
    skip_indent = None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if line.strip() == "" or indent > skip_indent:
                continue
            skip_indent = None
        if SKIPPED_DIRECTIVE.match(line):
            skip_indent = indent
            continue
        if ADORNMENT.match(line) or FIELD.match(line):
            continue
        m = DIRECTIVE.match(line)
        if m:
            line = m.group(1) + m.group(2)
            if line.strip() == "":
                continue
        line = ROLE.sub(r"\1", line)
        line = LINK.sub(r"\1", line)
        line = LITERAL.sub(r"`\1`", line)
        out.append(line.rstrip())
    cleaned = "\n".join(out)
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned)
    return cleaned.strip() + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", default=SOURCES)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "work"))
    args = parser.parse_args()
    paths = []
    for root, _, files in os.walk(args.sources):
        for name in files:
            if name.endswith(".rst.txt"):
                rel = os.path.relpath(os.path.join(root, name), args.sources)
                if rel not in EXCLUDED:
                    paths.append(rel)
    paths.sort()
    if not paths:
        raise SystemExit(f"no .rst.txt files under {args.sources} (apt-get install python3-doc)")
    train, heldout, listing = [], [], {"train": [], "heldout": []}
    for i, rel in enumerate(paths):
        with open(os.path.join(args.sources, rel), encoding="utf-8") as f:
            doc = clean(f.read())
        if i % HELD_OUT_EVERY == HELD_OUT_PHASE:
            heldout.append(doc)
            listing["heldout"].append(rel)
        else:
            train.append(doc)
            listing["train"].append(rel)
    os.makedirs(args.out, exist_ok=True)
    for name, docs in (("train.txt", train), ("heldout.txt", heldout)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write(SEPARATOR.join(docs))
    with open(os.path.join(args.out, "documents.json"), "w", encoding="utf-8") as f:
        json.dump(listing, f, indent=1)
    print(f"{len(train)} training documents ({sum(map(len, train))} chars), "
          f"{len(heldout)} held out ({sum(map(len, heldout))} chars)")


if __name__ == "__main__":
    main()
