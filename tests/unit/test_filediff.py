"""The file diff renderer: context, long files, binary, large, no trailing newline, CRLF, unicode,
creates and deletes, and redaction of env files and secret files."""

from __future__ import annotations

from funops.plan.filediff import (
    DELETE_HEAD,
    HIDDEN_LINE,
    NO_NEWLINE,
    SECRET_CHANGED,
    SECRET_UNCHANGED,
    Redaction,
    render,
)

PATH = "/etc/nginx/conf.d/funops-site.conf"


def lines(text: str | None) -> list[str]:
    return (text or "").rstrip("\n").split("\n") if text else []


def numbered(n: int, changed: int | None = None) -> bytes:
    return "".join(f"line {i}{' changed' if i == changed else ''}\n" for i in range(n)).encode()


def test_an_update_shows_the_changed_lines_with_context() -> None:
    old = b"a\nb\nc\n    proxy_read_timeout 30s;\nd\ne\nf\ng\n"
    new = old.replace(b"30s", b"45s")
    doc = render(PATH, old, new)
    out = lines(doc.unified)
    assert doc.format == "unified" and not doc.truncated
    assert out[0] == f"--- {PATH} (live)" and out[1] == f"+++ {PATH} (desired)"
    assert "-    proxy_read_timeout 30s;" in out and "+    proxy_read_timeout 45s;" in out
    assert " c" in out and " f" in out and " g" not in out  # 3 lines of context by default
    narrow = lines(render(PATH, old, new, context=0).unified)
    assert " c" not in narrow and "+    proxy_read_timeout 45s;" in narrow
    assert (doc.old_size, doc.new_size) == (len(old), len(new))


def test_the_same_content_gives_an_empty_diff() -> None:
    doc = render(PATH, b"x\n", b"x\n")
    assert doc.format == "unified" and doc.unified == ""


def test_a_create_is_all_plus_and_a_delete_says_what_goes() -> None:
    created = render(PATH, None, b"one\ntwo\n")
    assert lines(created.unified)[:2] == ["--- /dev/null", f"+++ {PATH} (desired)"]
    assert lines(created.unified)[3:] == ["+one", "+two"] and created.old_size is None
    deleted = render(PATH, numbered(50), None)
    out = lines(deleted.unified)
    assert out[1] == "+++ /dev/null" and out[3:] == [f"-line {i}" for i in range(DELETE_HEAD)]
    assert (
        deleted.truncated
        and deleted.note == f"removes {len(numbered(50))} bytes, 50 line(s); the first 10 shown"
    )


def test_long_diffs_are_cut() -> None:
    doc = render(PATH, numbered(2000), numbered(2000, changed=1)[:0] + b"x\n" * 2000, max_lines=50)
    out = lines(doc.unified)
    assert doc.truncated and len(out) == 53 and out[-1].endswith("more diff line(s) not shown")


def test_one_change_in_a_long_file_is_one_small_hunk() -> None:
    doc = render(PATH, numbered(5000), numbered(5000, changed=2500))
    assert lines(doc.unified)[2:] == [
        "@@ -2498,7 +2498,7 @@",
        *(f" line {i}" for i in range(2497, 2500)),
        "-line 2500",
        "+line 2500 changed",
        *(f" line {i}" for i in range(2501, 2504)),
    ]


def test_binary_and_large_files_show_sizes_only() -> None:
    binary = render(PATH, b"\x00\x01\x02", b"\x00\x01\x02\x03")
    assert (binary.format, binary.note, binary.unified) == ("binary", "binary: 3 → 4 bytes", None)
    assert render(PATH, b"ok\n", b"\xff\xfe latin").format == "binary"  # not UTF-8
    large = render(PATH, b"a\n", b"b" * 100, max_bytes=50)
    assert (large.format, large.note) == ("large", "large: 2 → 100 bytes")
    cut = render(PATH, b"a" * 10, b"b\n", old_size=10_000_000)  # the fetch cut it: the size says large
    assert cut.format == "large" and cut.old_size == 10_000_000


def test_no_trailing_newline_is_marked() -> None:
    out = lines(render(PATH, b"a\nb", b"a\nb\n").unified)
    assert out[-3:] == ["-b", NO_NEWLINE, "+b"]


def test_crlf_and_control_characters_are_visible() -> None:
    out = lines(render(PATH, b"a\r\nb\r\n", b"a\nb\r\n").unified)
    assert "-a␍" in out and "+a" in out and " b␍" in out
    out = lines(render(PATH, b"", b"x\x1b[31mred\n").unified)
    assert out[-1] == "+x\\x1b[31mred"  # no escape sequence reaches a terminal
    assert lines(render(PATH, b"", "a\x9b2Jb\n".encode()).unified)[-1] == "+a\\x9b2Jb"  # nor a C1 CSI


def test_unicode() -> None:
    out = lines(render(PATH, "<h1>héllo</h1>\n".encode(), "<h1>héllo wörld ✓</h1>\u2028x\n".encode()).unified)
    assert out[-2:] == ["-<h1>héllo</h1>", "+<h1>héllo wörld ✓</h1>\u2028x"]  # U+2028 does not break a line


ENV_OLD = b'# Managed by funops\nAPI_TOKEN="old-secret-value"\nDB_PASS="same-secret-pw"\nPORT="8081"\n'
ENV_NEW = b'# Managed by funops\nAPI_TOKEN="new-secret-value"\nDB_PASS="same-secret-pw"\nPORT="8082"\n'
SECRETS = Redaction.for_env(frozenset({"API_TOKEN", "DB_PASS"}), ENV_NEW)


def test_env_files_name_changed_secret_keys_and_show_plain_values() -> None:
    doc = render("/etc/funops/apps/api.env", ENV_OLD, ENV_NEW, SECRETS)
    text = doc.unified or ""
    out = lines(text)
    assert f"+API_TOKEN={SECRET_CHANGED}" in out and "-API_TOKEN=<secret>" in out
    assert f" DB_PASS={SECRET_UNCHANGED}" in out
    assert '-PORT="8081"' in out and '+PORT="8082"' in out
    assert "secret-value" not in text and "same-secret-pw" not in text


def test_env_values_of_removed_or_formerly_secret_keys_are_hidden() -> None:
    # API_TOKEN was a secret when applied and is plain now: its old value still never prints.
    old = b"API_TOKEN=hunter2-old\nGONE=removed-value\nplain text line\n"
    new = b"API_TOKEN=public\n"
    doc = render("/x.env", old, new, Redaction.for_env(frozenset({"API_TOKEN"}), new))
    text = doc.unified or ""
    assert "hunter2-old" not in text and "removed-value" not in text and "plain text line" not in text
    assert "-GONE=<value hidden>" in lines(text) and f"-{HIDDEN_LINE}" in lines(text)
    deleted = render("/x.env", old, None, Redaction.for_env(frozenset(), None))  # a delete: none plain
    assert "hunter2-old" not in (deleted.unified or "") and "removed-value" not in (deleted.unified or "")


def test_a_plain_value_equal_to_a_secret_hides_its_line() -> None:
    old = b"TOKEN=s3cr3t-token\nCOPY=a\n"
    new = b"TOKEN=s3cr3t-token\nCOPY=s3cr3t-token\n"
    text = render("/x.env", old, new, Redaction.for_env(frozenset({"TOKEN"}), new)).unified or ""
    assert "s3cr3t" not in text and f"+{HIDDEN_LINE}" in lines(text)


def test_secret_files_show_nothing_of_their_content() -> None:
    doc = render("/etc/funops/tls/site.key", b"-----BEGIN KEY-----\nold\n", b"new\n", Redaction(hidden=True))
    assert (doc.format, doc.unified, doc.note) == ("hidden", None, "content hidden (a secret)")


def test_keys_found_only_on_the_node_never_show_their_value() -> None:
    # drift: the new side is the live file; a key added there by hand is not declared plain.
    declared = b"PORT=1\n"
    live = b"PORT=1\nHANDEDIT=hand-typed-token\n"
    text = render("/x.env", declared, live, Redaction.for_env(frozenset(), declared)).unified or ""
    assert "+HANDEDIT=<value hidden>" in lines(text) and "hand-typed-token" not in text


def test_a_known_secret_value_is_hidden_in_any_file() -> None:
    from funops.plan.filediff import secret_values

    env = b'API_TOKEN="tok-1234567890"\nPORT="80"\n'
    key = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    secrets = secret_values(env, frozenset({"API_TOKEN"})) | secret_values(key, None)
    assert secrets == {"tok-1234567890", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}
    new = b"token tok-1234567890 pasted\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nplain\n"
    text = render("/srv/app.conf", b"plain\n", new, Redaction(scrub=secrets)).unified or ""
    assert "tok-1234567890" not in text and "MIIEvQ" not in text
    assert lines(text)[-3:] == [f"+{HIDDEN_LINE}", f"+{HIDDEN_LINE}", " plain"]
