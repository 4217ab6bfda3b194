#!/usr/bin/env python3
"""Expected token ids and decoded text for TokenizerAgreementTest, computed by Hugging Face `tokenizers`.

The Java side runs the same tokenizer.json through DJL's binding of the same Rust library; these fixtures
come from its Python binding, a reference no one in this project wrote.

Invocation (from the repository root):

  1. On a machine with JDK 25, write the three tokenizers (gpt2/, llama2/, llama3/, each with tokenizer.json):

       export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
       mvn -B -o -q -DskipTests package -pl csd-executor-plugin -am
       $JAVA_HOME/bin/java -cp 'csd-executor-plugin/target/csd-executor-plugin.jar:csd-executor-plugin/target/lib/*' \
           io.inf2.model.tokenizer.TokenizerJsonWriter /tmp/inf2-tokenizers

  2. Where Python has `tokenizers` (pip install tokenizers), with that directory copied over:

       python3 tools/reference/tokenizer_fixtures.py --tokenizers /tmp/inf2-tokenizers \
           --corpus csd-executor-plugin/src/test/resources/tokenizer/corpus.jsonl \
           --out csd-executor-plugin/src/test/resources/fixtures/tokenizer

     It writes <out>/gpt2.json, <out>/llama2.json and <out>/llama3.json.

The corpus has one JSON string per line. A string holding a lone UTF-16 surrogate (a JSON escape such as
\\ud800 with no partner) cannot be handed to a UTF-8 tokenizer; both this script and io.inf2.model.tokenizer.
HfTokenizer replace each lone surrogate with U+FFFD before encoding, and the fixture records that.

Each fixture holds the sha256 of the tokenizer.json and of the corpus it was made from, so the Java test can tell
a stale fixture from a disagreement. Per corpus line: ids with the tokenizer's special tokens (BOS) added, ids
without them, the decoding of the latter with special tokens skipped, and the decoding of the former with
special tokens kept.
"""

import argparse
import hashlib
import json
import os
import re
import sys

STYLES = ("gpt2", "llama2", "llama3")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_corpus(path):
    texts = []
    with open(path, encoding="utf-8", newline="\n") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            try:
                text = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path} line {number}: not a JSON string: {e}")
            if not isinstance(text, str):
                sys.exit(f"{path} line {number}: expected a JSON string, got {type(text).__name__}")
            texts.append(text)
    return texts


def fixture(tokenizer_json, corpus_path, texts):
    from tokenizers import Tokenizer, __version__

    tokenizer = Tokenizer.from_file(tokenizer_json)
    # The fixtures describe the tokenizer as written: no truncation or padding configured.
    if tokenizer.truncation is not None or tokenizer.padding is not None:
        sys.exit(f"{tokenizer_json}: truncation or padding is configured; the writer never sets them")
    cases = []
    for number, text in enumerate(texts, start=1):
        # json.loads joins valid surrogate pairs, so any surrogate left in a str is a lone one.
        valid = LONE_SURROGATE.sub("\ufffd", text)
        with_special = tokenizer.encode(valid, add_special_tokens=True).ids
        without_special = tokenizer.encode(valid, add_special_tokens=False).ids
        cases.append({
            "line": number,
            "text": text,
            "ids": with_special,
            "ids_without_special_tokens": without_special,
            "decoded": tokenizer.decode(without_special, skip_special_tokens=True),
            "decoded_with_special_tokens": tokenizer.decode(with_special, skip_special_tokens=False),
        })
    header = {
        "generator": "tools/reference/tokenizer_fixtures.py",
        "tokenizers_version": __version__,
        "tokenizer_json_sha256": sha256(tokenizer_json),
        "corpus_sha256": sha256(corpus_path),
        "lone_surrogates": "replaced by U+FFFD before encoding",
    }
    # One case per line keeps diffs of regenerated fixtures readable; ASCII escapes keep lone surrogates intact.
    lines = ["{"]
    for key, value in header.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=True)},")
    lines.append('  "cases": [')
    lines.append(",\n".join("    " + json.dumps(c, ensure_ascii=True, separators=(",", ":")) for c in cases))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizers", required=True, help="directory with gpt2/, llama2/, llama3/ tokenizer.json")
    parser.add_argument("--corpus", required=True, help="corpus.jsonl: one JSON string per line")
    parser.add_argument("--out", required=True, help="directory for <style>.json fixtures")
    args = parser.parse_args()

    texts = read_corpus(args.corpus)
    os.makedirs(args.out, exist_ok=True)
    for style in STYLES:
        tokenizer_json = os.path.join(args.tokenizers, style, "tokenizer.json")
        if not os.path.isfile(tokenizer_json):
            sys.exit(f"missing {tokenizer_json}")
        out = os.path.join(args.out, f"{style}.json")
        with open(out, "w", encoding="ascii", newline="\n") as f:
            f.write(fixture(tokenizer_json, args.corpus, texts))
        print(f"{out}: {len(texts)} cases")


if __name__ == "__main__":
    main()
