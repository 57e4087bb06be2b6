#!/usr/bin/env python3
"""Cross-checks the need-to-know policy in policies/ with pycasbin.

Loads model.conf and policy.csv into pycasbin (an independent casbin
implementation), validates them against the field catalogue (fields.csv) and
the conventions of policies/README.md (value kinds, item kinds and codes
included; the paths RegistrationForm of broker.proto writes must exist with
their kinds), and runs every expectation table in tests/*.csv. Every decision is also computed by a small reference evaluator
that states the model's semantics in plain Python (the semantics the Rust
decision table must reproduce); a disagreement between the two is an error.

Usage:
  policy_crosscheck.py POLICY_DIR                     validate and run the tables
  policy_crosscheck.py POLICY_DIR --matrix PHASE [--action read|contribute]
                                                      print the allow grid
  policy_crosscheck.py POLICY_DIR --full-grid         compare pycasbin and the
                                                      reference on every request
  policy_crosscheck.py POLICY_DIR --print-g2          print the generated block
                                                      that ends policy.csv: its
                                                      comment and the cat:/class:
                                                      g2 lines of fields.csv

Exit code 0 when everything holds, 1 with a list of problems otherwise.
Needs pycasbin: pip install casbin
"""

import argparse
import csv
import re
import sys
from pathlib import Path

import casbin

# The codes of the API (proto/schakel/v1/common.proto and the partner types of
# DOMAIN.md). A new partner type is added here and in the policy together.
PARTNER_TYPES = ["politie", "parket", "caw", "vk", "ggz", "justitiehuis", "ocj", "veilig_huis"]
ROLES = ["aanmelder", "team_member", "casusregisseur", "privacy_officer", "coordinator"]
PHASES = [
    "registration",
    "case_building",
    "assessment",
    "case_direction",
    "follow_up",
    "closed",
    "not_retained",
]
ACTIONS = ["read", "contribute"]
EFFECTS = ["allow", "deny"]
GDPR_CLASSES = ["ordinary", "art9_health", "art10_criminal", "national_number", "minor"]
LEVELS = ["dossier", "person"]
FIELDS_HEADER = [
    "path",
    "category",
    "gdpr_class",
    "level",
    "value_kind",
    "item_kind",
    "codes",
    "description_nl",
    "description_en",
]
# FieldValueKind of proto/schakel/v1/policy.proto, lower case: the case of the
# broker's FieldValue a contribution must use.
VALUE_KINDS = [
    "text",
    "integer",
    "number",
    "boolean",
    "date",
    "timestamp",
    "code",
    "address",
    "person_ref",
    "list",
    "record",
]
TESTS_HEADER = ["subject", "role", "field", "action", "phase", "expected"]

# The paths the typed parts of RegistrationForm (proto/schakel/v1/broker.proto)
# write, with the value kind and item kind the broker gives them, and the codes
# the catalogue must allow (at least these; PersonRole and the proto comments).
REGISTRATION_FORM_PATHS = {
    "registration.violence_types": ("list", "code", ["fysiek", "seksueel", "psychisch", "economisch"]),
    "registration.violence_forms": (
        "list",
        "code",
        [
            "partnergeweld",
            "post_partnergeweld",
            "kindermishandeling",
            "kinderen_getuige",
            "oudermishandeling",
            "eergerelateerd_geweld",
            "belaging",
            "cybergeweld",
        ],
    ),
    "registration.situation_description": ("text", "", []),
    "registration.risk_factors": ("list", "record", []),
    "registration.protective_factors": ("list", "record", []),
    "registration.involved_organisations": ("list", "record", []),
    "registration.source_reference": ("text", "", []),
    "persons.roles": ("list", "code", ["slachtoffer", "pleger", "kind", "familie"]),
    "persons.given_name": ("text", "", []),
    "persons.family_name": ("text", "", []),
    "persons.birth_date": ("date", "", []),
    "persons.national_number": ("text", "", []),
    "persons.address": ("address", "", []),
    "persons.relations": ("list", "record", []),
}

# Group name prefixes per role definition: the left side is always a concrete
# code, the right side always a group, so groups are one level deep.
G_PREFIX_PARTNER = "pt:"
G_PREFIX_ROLE = "roles:"
G2_PREFIXES = ("cat:", "class:", "share:")
G3_PREFIX = "phases:"

# Portable rule lines: pycasbin treats brackets and parentheses inside a token
# specially and no adapter strips trailing comments.
FORBIDDEN_IN_RULES = re.compile(r"[\"'()\[\]#]")
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
PATH = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

PT_ABBREVIATIONS = {
    "politie": "pol",
    "parket": "par",
    "caw": "caw",
    "vk": "vk",
    "ggz": "ggz",
    "justitiehuis": "jh",
    "ocj": "ocj",
    "veilig_huis": "vh",
    "*": "*",
}
ROLE_LETTERS = {
    "aanmelder": "a",
    "team_member": "t",
    "casusregisseur": "c",
    "privacy_officer": "p",
    "coordinator": "k",
}


class Problems:
    """Collects problems as 'file:line: message'."""

    def __init__(self):
        self.items = []

    def add(self, where, message):
        self.items.append(f"{where}: {message}")

    def __bool__(self):
        return bool(self.items)


def data_lines(path):
    """(line number, text) of the lines that are neither blank nor comments."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            text = line.strip()
            if text and not text.startswith("#"):
                yield number, text


def load_fields(path, problems):
    """The catalogue as a list of dicts, in file order."""
    fields = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != FIELDS_HEADER:
            problems.add(f"{path.name}:1", f"header must be {','.join(FIELDS_HEADER)}")
            return fields
        seen = set()
        for row in reader:
            where = f"{path.name}:{reader.line_num}"
            if not row:
                continue
            if len(row) != len(FIELDS_HEADER):
                problems.add(where, f"expected {len(FIELDS_HEADER)} columns, got {len(row)}")
                continue
            field = dict(zip(FIELDS_HEADER, row))
            p = field["path"]
            if not PATH.match(p):
                problems.add(where, f"path {p!r} is not dotted lower_snake")
            if p in seen:
                problems.add(where, f"duplicate path {p}")
            seen.add(p)
            if not CODE.match(field["category"]):
                problems.add(where, f"category {field['category']!r} is not lower_snake")
            if field["gdpr_class"] not in GDPR_CLASSES:
                problems.add(where, f"gdpr_class {field['gdpr_class']!r} not in {GDPR_CLASSES}")
            if field["level"] not in LEVELS:
                problems.add(where, f"level {field['level']!r} not in {LEVELS}")
            elif (field["level"] == "person") != p.startswith("persons."):
                problems.add(where, "level is person exactly for paths under persons.")
            check_value_kind(field, where, problems)
            for name in ("description_nl", "description_en"):
                if not field[name].strip() or len(field[name]) > 300:
                    problems.add(where, f"{name} must be 1-300 characters")
            fields.append(field)
    check_registration_form(fields, path.name, problems)
    return fields


def check_registration_form(fields, name, problems):
    """The catalogue defines every path RegistrationForm writes, with its kinds
    and codes."""
    by_path = {f["path"]: f for f in fields}
    for p, (kind, item, codes) in REGISTRATION_FORM_PATHS.items():
        f = by_path.get(p)
        if f is None:
            problems.add(name, f"{p} is missing: RegistrationForm (broker.proto) writes it")
            continue
        if (f["value_kind"], f["item_kind"]) != (kind, item):
            want = f"{kind} of {item}" if item else kind
            problems.add(name, f"{p} must be {want} as RegistrationForm writes it")
        allowed = set(f["codes"].split("|")) if f["codes"] else None
        if allowed is not None:
            missing = [c for c in codes if c not in allowed]
            if missing:
                problems.add(name, f"{p} must allow the codes {'|'.join(missing)}")


def check_value_kind(field, where, problems):
    """value_kind is a FieldValueKind; item_kind is given exactly for lists (and
    is not itself a list); codes only for a code or a list of codes, as
    lower_snake codes separated by |, each once."""
    kind, item, codes = field["value_kind"], field["item_kind"], field["codes"]
    if kind not in VALUE_KINDS:
        problems.add(where, f"value_kind {kind!r} not in {VALUE_KINDS}")
        return
    if kind == "list":
        if item == "":
            problems.add(where, "item_kind is required for value_kind list")
        elif item == "list" or item not in VALUE_KINDS:
            problems.add(where, f"item_kind {item!r} must be one of {VALUE_KINDS} other than list")
    elif item != "":
        problems.add(where, f"item_kind is only for value_kind list, not {kind}")
    if codes == "":
        return
    if not (kind == "code" or (kind == "list" and item == "code")):
        problems.add(where, "codes are only for value_kind code or a list with item_kind code")
        return
    seen = set()
    for code in codes.split("|"):
        if not CODE.match(code):
            problems.add(where, f"code {code!r} is not lower_snake (codes are separated by |)")
        elif code in seen:
            problems.add(where, f"code {code} is listed twice")
        seen.add(code)


def generated_g2(fields):
    """The cat:/class: g2 lines that fields.csv implies, in catalogue order."""
    lines = []
    for f in fields:
        lines.append(f"g2, {f['path']}, cat:{f['category']}")
        lines.append(f"g2, {f['path']}, class:{f['gdpr_class']}")
    return lines


# The comment that opens the generated block; the block runs from it to the end
# of policy.csv.
GENERATED_COMMENT = [
    "# " + "-" * 76,
    "# Field catalogue groups (g2 cat:* and class:*), one pair per line of",
    "# fields.csv. GENERATED: replace from the dashed line above to the end of the",
    "# file with the output of",
    "#   python3 tests/python/policy_crosscheck.py policies --print-g2",
    "# Do not edit by hand; the cross-check fails when they differ from fields.csv.",
    "# " + "-" * 76,
]


def generated_block(fields):
    """The text that ends policy.csv: the comment and the g2 lines."""
    return "\n".join(GENERATED_COMMENT + generated_g2(fields)) + "\n"


def parse_policy(path, fields, problems):
    """Rules and groups of policy.csv, validated. Returns (rules, groups) where
    rules are (line, tokens) of p lines and groups maps g/g2/g3 to
    {member: set(group)}."""
    field_paths = {f["path"] for f in fields}
    rules = []
    groups = {"g": {}, "g2": {}, "g3": {}}
    seen = {}
    for number, text in data_lines(path):
        where = f"{path.name}:{number}"
        if FORBIDDEN_IN_RULES.search(text):
            problems.add(where, "quotes, brackets or # inside a rule line are not portable")
            continue
        tokens = [t.strip() for t in text.split(",")]
        key = ", ".join(tokens)
        if key in seen:
            problems.add(where, f"duplicate of line {seen[key]}")
            continue
        seen[key] = number
        kind, values = tokens[0], tokens[1:]
        if any(v == "" for v in values):
            problems.add(where, "empty column")
            continue
        if kind == "p":
            if len(values) != 6:
                problems.add(where, "a rule has 6 columns: sub, role, obj, act, phase, eft")
                continue
            rules.append((number, values))
        elif kind in groups:
            if len(values) != 2:
                problems.add(where, f"a {kind} line has 2 columns: member, group")
                continue
            member, group = values
            if kind == "g":
                if member in PARTNER_TYPES:
                    ok = group.startswith(G_PREFIX_PARTNER)
                elif member in ROLES:
                    ok = group.startswith(G_PREFIX_ROLE)
                else:
                    problems.add(where, f"{member!r} is neither a partner type nor a role")
                    continue
                if not ok:
                    problems.add(where, f"group {group!r} must start with pt: (partner types) or roles: (roles)")
                    continue
            elif kind == "g2":
                if member not in field_paths:
                    problems.add(where, f"unknown field {member!r} (not in fields.csv)")
                    continue
                if not group.startswith(G2_PREFIXES):
                    problems.add(where, f"field group {group!r} must start with one of {G2_PREFIXES}")
                    continue
            else:
                if member not in PHASES:
                    problems.add(where, f"unknown phase {member!r}")
                    continue
                if not group.startswith(G3_PREFIX):
                    problems.add(where, f"phase group {group!r} must start with {G3_PREFIX}")
                    continue
            groups[kind].setdefault(member, set()).add(group)
        else:
            problems.add(where, f"line must start with p, g, g2 or g3, not {kind!r}")

    # The catalogue groups are exactly those fields.csv implies.
    expected = {tuple(l.split(", ")[1:]) for l in generated_g2(fields)}
    actual = {(m, g) for m, gs in groups["g2"].items() for g in gs if g.startswith(("cat:", "class:"))}
    for m, g in sorted(expected - actual):
        problems.add(path.name, f"missing g2 line: g2, {m}, {g} (run --print-g2)")
    for m, g in sorted(actual - expected):
        problems.add(path.name, f"g2, {m}, {g} contradicts fields.csv")
    if expected == actual:
        text = path.read_text(encoding="utf-8").rstrip() + "\n"
        if not text.endswith(generated_block(fields)):
            problems.add(
                path.name,
                "the file does not end with the generated block in catalogue order "
                "(replace it with the output of --print-g2)",
            )

    defined = {name for kind in groups.values() for gs in kind.values() for name in gs}
    for number, (sub, role, obj, act, phase, eft) in rules:
        where = f"{path.name}:{number}"
        checks = [
            ("partner type", sub, PARTNER_TYPES, G_PREFIX_PARTNER),
            ("role", role, ROLES, G_PREFIX_ROLE),
            ("field", obj, field_paths, G2_PREFIXES),
            ("phase", phase, PHASES, G3_PREFIX),
        ]
        for what, value, known, prefix in checks:
            if value == "*" or value in known:
                continue
            if value.startswith(prefix) and value in defined:
                continue
            problems.add(where, f"unknown {what} or group {value!r}")
        if act not in ACTIONS:
            problems.add(where, f"action {act!r} not in {ACTIONS}")
        if eft not in EFFECTS:
            problems.add(where, f"effect {eft!r} not in {EFFECTS}")
    return rules, groups


class Reference:
    """The model's semantics in plain Python: a rule matches a request when each
    of its columns is *, the request's value, or a group the value belongs to
    (one level); allowed when an allow rule matches and no deny rule does."""

    def __init__(self, rules, groups):
        self.rules = [values for _, values in rules]
        self.g, self.g2, self.g3 = groups["g"], groups["g2"], groups["g3"]

    @staticmethod
    def _m(pattern, value, groups):
        return pattern == "*" or pattern == value or pattern in groups.get(value, ())

    def decide(self, sub, role, obj, act, phase):
        """'allow', 'deny' (a deny rule matched) or 'none' (no rule matched)."""
        allow = deny = False
        for p_sub, p_role, p_obj, p_act, p_phase, eft in self.rules:
            if (
                p_act == act
                and self._m(p_phase, phase, self.g3)
                and self._m(p_sub, sub, self.g)
                and self._m(p_role, role, self.g)
                and self._m(p_obj, obj, self.g2)
            ):
                if eft == "deny":
                    deny = True
                else:
                    allow = True
        return "deny" if deny else ("allow" if allow else "none")


def run_tables(directory, enforcer, reference, fields, problems):
    """Runs tests/*.csv; returns the number of rows run."""
    field_paths = {f["path"] for f in fields}
    files = sorted((directory / "tests").glob("*.csv"))
    if not files:
        problems.add(str(directory / "tests"), "no expectation tables")
    count = 0
    seen = {}
    for path in files:
        lines = list(data_lines(path))
        if not lines or [c.strip() for c in lines[0][1].split(",")] != TESTS_HEADER:
            problems.add(f"{path.name}:1", f"header must be {','.join(TESTS_HEADER)}")
            continue
        for number, text in lines[1:]:
            where = f"tests/{path.name}:{number}"
            row = [c.strip() for c in text.split(",")]
            if len(row) != 6:
                problems.add(where, "expected 6 columns")
                continue
            subject, role, field, action, phase, expected = row
            bad = []
            if not (CODE.match(subject) or subject == "*"):
                bad.append(f"subject {subject!r}")
            if role not in ROLES:
                bad.append(f"role {role!r}")
            if field not in field_paths:
                bad.append(f"field {field!r} (not in fields.csv)")
            if action not in ACTIONS:
                bad.append(f"action {action!r}")
            if phase not in PHASES:
                bad.append(f"phase {phase!r}")
            if expected not in EFFECTS:
                bad.append(f"expected {expected!r}")
            if bad:
                problems.add(where, "unknown " + ", ".join(bad))
                continue
            request = (subject, role, field, action, phase)
            if request in seen and seen[request][1] != expected:
                problems.add(where, f"contradicts {seen[request][0]}")
            seen[request] = (where, expected)
            got = "allow" if enforcer.enforce(*request) else "deny"
            ref = reference.decide(*request)
            if (ref == "allow") != (got == "allow"):
                problems.add(where, f"pycasbin says {got}, the reference evaluator {ref}")
            if got != expected:
                problems.add(where, f"{' '.join(request)}: expected {expected}, got {got}")
            count += 1
    return count


def print_matrix(enforcer, reference, fields, phase, action, problems):
    subjects = PARTNER_TYPES + ["*"]
    print(f"{action} in phase {phase}: X = allowed, . = no rule, - = denied by a deny rule")
    print("columns: " + ", ".join(f"{PT_ABBREVIATIONS[s]}={s}" for s in subjects))
    print("         " + ", ".join(f"{letter}={role}" for role, letter in ROLE_LETTERS.items()))
    width = max(len(f["path"]) for f in fields) + 2
    print(" " * width + "".join(PT_ABBREVIATIONS[s].ljust(6) for s in subjects))
    print(" " * width + "".join("".join(ROLE_LETTERS[r] for r in ROLES) + " " for _ in subjects))
    for f in fields:
        cells = []
        for s in subjects:
            group = ""
            for r in ROLES:
                request = (s, r, f["path"], action, phase)
                allowed = enforcer.enforce(*request)
                ref = reference.decide(*request)
                if allowed != (ref == "allow"):
                    problems.add("matrix", f"pycasbin and reference differ on {request}")
                group += "X" if allowed else ("-" if ref == "deny" else ".")
            cells.append(group + " ")
        print(f["path"].ljust(width) + "".join(cells))


def full_grid(enforcer, reference, fields, problems):
    """Compares pycasbin with the reference on every combination; returns the
    number of requests compared."""
    count = 0
    for s in PARTNER_TYPES + ["*"]:
        for r in ROLES:
            for f in fields:
                for a in ACTIONS:
                    for ph in PHASES:
                        request = (s, r, f["path"], a, ph)
                        if enforcer.enforce(*request) != (reference.decide(*request) == "allow"):
                            problems.add("grid", f"pycasbin and reference differ on {request}")
                        count += 1
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policy_dir", type=Path)
    parser.add_argument("--matrix", metavar="PHASE", choices=PHASES)
    parser.add_argument("--action", choices=ACTIONS, default="read")
    parser.add_argument("--full-grid", action="store_true")
    parser.add_argument("--print-g2", action="store_true")
    args = parser.parse_args()
    directory = args.policy_dir

    problems = Problems()
    fields = load_fields(directory / "fields.csv", problems)
    if args.print_g2:
        if problems:
            return report(problems)
        sys.stdout.write(generated_block(fields))
        return 0
    rules, groups = parse_policy(directory / "policy.csv", fields, problems)
    if problems:
        return report(problems)

    enforcer = casbin.Enforcer(str(directory / "model.conf"), str(directory / "policy.csv"))
    if len(enforcer.get_policy()) != len(rules):
        problems.add("policy.csv", f"pycasbin loaded {len(enforcer.get_policy())} rules, expected {len(rules)}")
    reference = Reference(rules, groups)

    if args.matrix:
        print_matrix(enforcer, reference, fields, args.matrix, args.action, problems)
        return report(problems)
    if args.full_grid:
        n = full_grid(enforcer, reference, fields, problems)
        if not problems:
            print(f"ok: pycasbin and the reference agree on all {n} requests")
        return report(problems)

    n = run_tables(directory, enforcer, reference, fields, problems)
    if not problems:
        grouped = sum(len(v) for kind in groups.values() for v in kind.values())
        print(f"ok: {len(fields)} fields, {len(rules)} rules, {grouped} group lines, {n} expectations hold")
    return report(problems)


def report(problems):
    for item in problems.items:
        print(item, file=sys.stderr)
    if problems:
        print(f"{len(problems.items)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
