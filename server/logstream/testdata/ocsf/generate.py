#!/usr/bin/env python3
"""Generates ocsf-1.7.0.schema.json: a JSON Schema (draft 2020-12) of the four
OCSF classes Trail's ocsf format emits — Account Change (3001), Authentication
(3002), Entity Management (3004), API Activity (6003) — from the OCSF schema's
own source files.

Source: https://github.com/ocsf/ocsf-schema at commit
dc6359b49cd3c8f9e84dd657ec4524ab244c12ca ("v1.7.0 Release Prep", version.json
1.7.0). Run with a clone of that repository:

    python3 generate.py /path/to/ocsf-schema > ocsf-1.7.0.schema.json

What it encodes, per class and every object reachable from it: attribute
types (string, integer, number, boolean; objects by $ref; arrays), required
attributes, enums of *_id attributes, the at_least_one / just_one
constraints, class_uid, category_uid and type_uid (class_uid*100 +
activity_id); unknown attributes are refused (profiles are not included:
Trail emits none of their attributes). It does not encode string regexes or
the "recommended" level.
"""
import json, os, subprocess, sys

ROOT = sys.argv[1]
COMMIT = "dc6359b49cd3c8f9e84dd657ec4524ab244c12ca"


def load(path):
    try:
        out = subprocess.run(["git", "-C", ROOT, "show", f"{COMMIT}:{path}"], check=True, capture_output=True).stdout
    except subprocess.CalledProcessError:
        return None
    return json.loads(out)


DICT = load("dictionary.json")
ATTRS = DICT["attributes"]
TYPES = DICT["types"]["attributes"]
CATEGORIES = load("categories.json")["attributes"]

INT_TYPES = {"integer_t", "long_t", "timestamp_t", "port_t"}


def base_type(t):
    while t in TYPES and TYPES[t].get("type") and TYPES[t]["type"] != t:
        t = TYPES[t]["type"]
    return t


def merged(kind, name):
    """attributes and constraints of an object or event, following extends."""
    d = load(f"objects/{name}.json") if kind == "object" else None
    if d is None:
        raise SystemExit(f"no object {name}")
    attrs, cons = {}, {}
    parent = d.get("extends")
    if parent and parent != "object":
        attrs, cons = merged("object", parent)
    for k, v in d.get("attributes", {}).items():
        if k == "$include":
            continue
        attrs[k] = {**attrs.get(k, {}), **v}
    if d.get("constraints"):
        cons = d["constraints"]
    return attrs, cons


DEFS = {}


def attr_schema(name, a):
    full = {**ATTRS.get(name, {}), **a}
    t = full.get("type")
    if t is None:
        raise SystemExit(f"attribute {name} has no type")
    if t in TYPES or t.endswith("_t"):
        b = base_type(t)
        if b in INT_TYPES:
            s = {"type": "integer"}
        elif b == "float_t":
            s = {"type": "number"}
        elif b == "boolean_t":
            s = {"type": "boolean"}
        elif b == "json_t":
            s = {}
        else:
            s = {"type": "string"}
        if "enum" in full and s.get("type") == "integer":
            s["enum"] = sorted(int(k) for k in full["enum"])
    elif t == "object":
        s = {"type": "object"}
    else:
        define(t)
        s = {"$ref": f"#/$defs/{t}"}
    if full.get("is_array"):
        s = {"type": "array", "items": s}
    return s


def constraint_schema(cons):
    out = {}
    if "at_least_one" in cons:
        out["anyOf"] = [{"required": [k]} for k in cons["at_least_one"]]
    if "just_one" in cons:
        out["oneOf"] = [{"required": [k]} for k in cons["just_one"]]
    return out


def obj_schema(attrs, cons):
    s = {"type": "object", "properties": {}, "additionalProperties": False}
    req = []
    for k, v in sorted(attrs.items()):
        s["properties"][k] = attr_schema(k, v)
        if v.get("requirement") == "required":
            req.append(k)
    if req:
        s["required"] = req
    s.update(constraint_schema(cons))
    return s


def define(name):
    if name in DEFS:
        return
    DEFS[name] = None  # recursion guard
    attrs, cons = merged("object", name)
    DEFS[name] = obj_schema(attrs, cons)


def event(path):
    d = load(path)
    chain = [d]
    while chain[-1].get("extends"):
        ext = chain[-1]["extends"]
        p = "events/base_event.json" if ext == "base_event" else f"events/{os.path.dirname(path).split('/')[-1]}/{ext}.json"
        chain.append(load(p))
    attrs, cons, acts = {}, {}, set()
    for c in reversed(chain):
        # A class's activity_id enum adds to the base event's (0 Unknown, 99 Other).
        acts |= {int(k) for k in c.get("attributes", {}).get("activity_id", {}).get("enum", {})}
        for k, v in c.get("attributes", {}).items():
            if k == "$include":
                continue
            attrs[k] = {**attrs.get(k, {}), **v}
        if c.get("constraints"):
            cons = c["constraints"]
    category = chain[-2].get("category") or d.get("category")
    cat_uid = CATEGORIES[category]["uid"]
    class_uid = cat_uid * 1000 + d["uid"]
    s = obj_schema(attrs, cons)
    acts = sorted(acts)
    s["properties"]["activity_id"] = {"type": "integer", "enum": acts}
    s["properties"]["class_uid"] = {"const": class_uid}
    s["properties"]["category_uid"] = {"const": cat_uid}
    s["properties"]["type_uid"] = {"enum": [class_uid * 100 + a for a in acts]}
    return class_uid, d["caption"], s


classes = {}
for p in ["events/iam/account_change.json", "events/iam/authentication.json", "events/iam/entity_management.json",
          "events/application/api_activity.json"]:
    uid, caption, s = event(p)
    s["title"] = f"{caption} ({uid})"
    classes[str(uid)] = s

out = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://trail.invalid/testdata/ocsf-1.7.0.schema.json",
    "title": "OCSF 1.7.0: Account Change, Authentication, Entity Management, API Activity",
    "description": f"Generated by generate.py from github.com/ocsf/ocsf-schema@{COMMIT}.",
    "oneOf": [{"$ref": f"#/$defs/class_{u}"} for u in sorted(classes)],
    "$defs": {**{f"class_{u}": s for u, s in classes.items()}, **dict(sorted(DEFS.items()))},
}
json.dump(out, sys.stdout, indent=1, sort_keys=False)
sys.stdout.write("\n")
