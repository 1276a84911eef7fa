"""OpenFlow metadata for the differential test's random rules.

Adds `metadata=V[/M]` matches, `set_field:V[/M]->metadata` among the applied
actions and the `clear_actions` and `write_metadata:V[/M]` instructions to
rules that gen_case.py made. The values come from one small
pool, so that what one rule writes another matches. Decisions are drawn from
a generator of their own (seeded from the case's), so that a case keeps every
other rule, action and frame it had before metadata existed.

Open vSwitch's metadata is 0 when a packet enters and changes only by
write_metadata and set_field; a rule of table 0 matching metadata=0 hits, a nonzero one
only after a resubmit back is impossible (resubmits go to higher tables), so
most matches are in later tables.
"""

import random

VALUES = (0x0, 0x1, 0x2, 0x5, 0xa0, 0xa5, 0x8000000000000000)
MASKS = (None, None, 0xff, 0xf, 0xf0, 0x1, 0x8000000000000001)


def rng_for(case_rng):
    """A generator of its own, seeded from the case's without drawing from it."""
    return random.Random(hash(case_rng.getstate()[1]) ^ 0x6D657461)


def _value_mask(rng):
    value, mask = rng.choice(VALUES), rng.choice(MASKS)
    if mask is None:
        return f"{value:#x}"
    return f"{value:#x}/{mask:#x}"


def match(rng, table):
    """`metadata=V[/M]` for a rule of `table`, or None."""
    if rng.random() >= (0.25 if table else 0.05):
        return None
    return "metadata=" + _value_mask(rng)


def instructions(rng, actions):
    """`actions` with clear_actions and write_metadata where Open vSwitch wants
    them: after the applied actions, before goto_table. A rule that drops
    keeps its `drop` alone."""
    if not actions or actions == [""] or actions == ["drop"]:
        return actions
    goes_on = any(a.startswith(("goto_table", "resubmit", "ct(")) for a in actions)
    extra = []
    if rng.random() < 0.04:
        extra.append("clear_actions")
    if rng.random() < (0.35 if goes_on else 0.08):
        extra.append("write_metadata:" + _value_mask(rng))
    at = len(actions) - 1 if actions[-1].startswith("goto_table") else len(actions)
    if rng.random() < (0.2 if goes_on else 0.04):
        # set_field changes it where it stands: a resubmit after it sees it.
        actions = list(actions)
        actions.insert(rng.randint(0, at), f"set_field:{_value_mask(rng)}->metadata")
        at += 1
    if not extra:
        return actions
    return actions[:at] + extra + actions[at:]
