#!/usr/bin/env python3
"""Validates FHIR R4 resources, one JSON resource per line (NDJSON), with the
PyPI package fhir.resources 6.2.2 (R4 4.0.1 models on pydantic v1): structure,
types, required elements, no unknown elements, primitive formats (ids,
dateTimes, instants, codes). It does not check code values or invariants.

Usage: fhir_validate.py FILE.ndjson [--max-errors N]
       fhir_validate.py --check        (exits 0 when the validator can run)

Prints one line per resource type with its count, then the first errors
(line number, resource type, id, what is wrong); exits 1 when any resource
is invalid, 2 on bad usage. scripts/test.sh installs it in a venv.
"""
import collections
import json
import sys


def load_validator():
    import importlib.metadata as metadata

    from fhir.resources import construct_fhir_element

    version = metadata.version("fhir.resources")
    if version != "6.2.2":
        raise SystemExit(f"fhir.resources {version} found; 6.2.2 (FHIR R4) is required")
    return construct_fhir_element


def main(argv):
    if argv[1:] == ["--check"]:
        load_validator()
        print("fhir.resources 6.2.2 ready")
        return 0
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = argv[1]
    max_errors = int(argv[argv.index("--max-errors") + 1]) if "--max-errors" in argv else 20
    construct = load_validator()
    counts = collections.Counter()
    errors = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            kind, rid = "?", "?"
            try:
                resource = json.loads(line)
                kind = resource.get("resourceType", "?")
                rid = resource.get("id", "-")
                construct(kind, resource)
                counts[kind] += 1
            except Exception as e:  # every failure is reported, whatever raised it
                counts[kind + " (invalid)"] += 1
                errors.append(f"line {number}: {kind}/{rid}: {' '.join(str(e).split())}")
    for kind in sorted(counts):
        print(f"{kind}: {counts[kind]}")
    valid = sum(n for k, n in counts.items() if not k.endswith("(invalid)"))
    print(f"{valid} valid, {len(errors)} invalid")
    for e in errors[:max_errors]:
        print("ERROR " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
