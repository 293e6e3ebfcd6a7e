#!/usr/bin/env python3
"""Parses the HL7 bench corpus with the PyPI `hl7` package (python-hl7) doing
the same reads as adapters/benches/hl7_parse.rs: MSH-9.1, MSH-9.2, MSH-10,
PID-3.1 and every OBX-5, unescaped.

Usage: pip install hl7; python3 hl7_python.py [CORPUS]
The corpus is written by `cargo bench -p medbus-adapters --bench hl7_parse`
(default: target/hl7-bench/corpus.hl7): one message per line, segments
ending in CR. Prints one line: `python-hl7 mb_per_s=… msg_per_s=…`.
"""

import os
import sys
import time

import hl7


def parse_and_read(raw: bytes) -> int:
    msg = hl7.parse(raw, encoding="utf-8")
    acc = len(msg["MSH.F9.R1.C1"]) + len(msg["MSH.F9.R1.C2"]) + len(msg["MSH.F10"])
    acc += len(msg["PID.F3.R1.C1"])
    try:
        obxs = msg.segments("OBX")
    except KeyError:  # python-hl7 raises when a message has no such segment
        obxs = []
    for obx in obxs:
        acc += len(obx.extract_field(field_num=5))
    return acc


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../target/hl7-bench/corpus.hl7")
    with open(path, "rb") as f:
        messages = [m for m in f.read().split(b"\n") if m]
    total = sum(len(m) for m in messages)
    parse_and_read(messages[0])  # warm up imports and caches
    best = None
    for _ in range(3):
        start = time.perf_counter()
        for m in messages:
            parse_and_read(m)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    print(
        f"python-hl7 {hl7.__version__ if hasattr(hl7, '__version__') else ''} messages={len(messages)} "
        f"bytes={total} seconds={best:.3f} mb_per_s={total / 1e6 / best:.3f} msg_per_s={len(messages) / best:.1f}"
    )


if __name__ == "__main__":
    main()
