"""Payloads the Python peer clients send, shared so every peer checks the
same thing. tests/interop_peers.rs passes the sizes; the patterns are
deterministic so a wrong byte shows up as a mismatch, not as luck."""

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 "
# Multi-byte UTF-8 (2, 3 and 4 bytes a character) so text is not just ASCII.
UNICODE = "h\u00e9llo w\u00f6rld \u20ac \U0001d11e " * 20000


def text(size):
    """An ASCII text of exactly `size` bytes, shifted by the size."""
    return "".join(ALPHABET[(i + size) % len(ALPHABET)] for i in range(size))


def binary(size):
    """`size` bytes covering every byte value."""
    return bytes((i * 31 + size) & 0xFF for i in range(size))


def sizes(arg):
    return [int(s) for s in arg.split(",") if s]


def messages(arg):
    """(kind, payload) pairs: text and binary at each size, then Unicode."""
    out = []
    for size in sizes(arg):
        out.append(("text", text(size)))
        out.append(("binary", binary(size)))
    out.append(("text", UNICODE))
    return out


def describe(kind, payload):
    return f"{kind} of {len(payload)} {'chars' if kind == 'text' else 'bytes'}"
