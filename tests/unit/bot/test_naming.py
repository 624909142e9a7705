"""War-room channel names follow Slack's rules for any title (R4)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.naming import channel_name, slugify

VALID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


def test_seed_title():
    assert (
        channel_name("INC-A1B2C3", "[TEST] Redis Cluster Down")
        == "inc-a1b2c3-test-redis-cluster-down"
    )


def test_accents_emoji_and_punctuation_only():
    assert channel_name("INC-A1B2C3", "Échec paiement ☠️ !!") == "inc-a1b2c3-echec-paiement"
    assert channel_name("INC-A1B2C3", "!!! ??? ...") == "inc-a1b2c3"
    assert channel_name("INC-A1B2C3", "数据库宕机") == "inc-a1b2c3"


def test_long_titles_are_cut_to_80_without_trailing_hyphen():
    name = channel_name("INC-A1B2C3", "word " * 60)
    assert len(name) <= 80 and not name.endswith("-")
    assert len(channel_name("INC-A1B2C3", "x" * 300, suffix="-6")) <= 80
    assert channel_name("INC-A1B2C3", "x" * 300, suffix="-6").endswith("-6")


def test_slugify_collapses_separators():
    assert slugify("  A -- B__C  ") == "a-b-c"


@settings(max_examples=300)
@given(st.text(max_size=300), st.sampled_from(["", "-2", "-6"]))
def test_any_title_gives_a_valid_deterministic_name(title, suffix):
    name = channel_name("INC-0F9E8D", title, suffix=suffix)
    assert VALID.match(name), name
    assert name == channel_name("INC-0F9E8D", title, suffix=suffix)
    assert name.startswith("inc-0f9e8d")
