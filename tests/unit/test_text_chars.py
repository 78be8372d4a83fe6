"""bad_char's character sets are exactly the unicodedata categories the rule names (Cc, Zl, Zp)."""

from __future__ import annotations

import sys
import unicodedata

from funops.model.text import bad_char


def test_bad_char_matches_the_unicode_categories_over_every_code_point() -> None:
    for multi_line, allowed in ((False, "\t"), (True, "\t\n\r")):
        for code in range(sys.maxunicode + 1):
            char = chr(code)
            if 0xD800 <= code <= 0xDFFF:
                continue  # surrogates: not in a str decoded from YAML
            bad = char not in allowed and unicodedata.category(char) in ("Cc", "Zl", "Zp")
            assert (bad_char(f"ok{char}x", multi_line) == char) is bad, (hex(code), multi_line)


def test_the_first_bad_character_is_reported() -> None:
    assert bad_char("a\u2028b\x00") == "\u2028"
    assert bad_char("line\nnext", multi_line=True) is None
    assert bad_char("line\nnext") == "\n"
