#!/usr/bin/env python3
"""Regenerates data/enums.json: every container.v1 proto enum as {name: number}.

The numbers are googleapis' google/container/v1/cluster_service.proto enum numbers, read from
the code that google-cloud-container-v1 generates from that proto (each enum's `value()` and
`name()` functions), so the fixture needs no protobuf parser. Usage:
  enums.py ~/.cargo/registry/src/*/google-cloud-container-v1-*/src/model.rs > data/enums.json
"""
import json
import re
import sys

src = open(sys.argv[1], encoding="utf-8").read()
out = {}
for m in re.finditer(r"\n( *)impl (\w+) \{\n\s*/// Gets the enum value\.(.*?)\n\1\}\n", src, re.S):
    ty, body = m.group(2), m.group(3)
    value = dict(re.findall(r"Self::(\w+) => (?:\{\s*)?std::option::Option::Some\((-?\d+)\)", body))
    name = dict(re.findall(r"Self::(\w+) => (?:\{\s*)?std::option::Option::Some\(\"(\w+)\"\)", body))
    if value and name and value.keys() == name.keys():
        # Enums nested in messages repeat short names (Status): numbered, the names tell them apart.
        key = ty
        n = 1
        while key in out:
            n += 1
            key = f"{ty}#{n}"
        out[key] = {name[v]: int(value[v]) for v in value}
# StatusCondition.canonicalCode is google.rpc.Code (google/rpc/code.proto), not in this proto.
out["google.rpc.Code"] = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
    "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}
json.dump(out, sys.stdout, indent=1, sort_keys=True)
print()
