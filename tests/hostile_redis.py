"""Hypothesis strategies for what Redis can hold in every key of Resque's layout (issue 15,
"The rules"): each key of the right type or of another one, holding random bytes, text with
control characters, bytes that are not UTF-8, JSON nested up to 100,000 deep, numbers no
counter or calendar has, and records shaped like payloads, failures, busy records and
statuses with each field missing or of the wrong type. Members of the queues and workers
sets and of the delayed schedule name keys that exist, so readers follow them.

``World`` is one such Redis; ``write(raw, world)`` puts it in (``raw`` sends bytes as given).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from labqueue import timefmt
from labqueue.keys import Keys

K = Keys()
#: Queue names: plain, with a slash, a space, control characters, bytes that are not UTF-8.
QUEUES = [b"default", b"q", b"a/b", b"sp ace", b"\x1b[2J", b"\xff\xfe", b"<b>x</b>"]
#: Worker ids: Resque's, several queues, no pid, not UTF-8, control characters.
WORKERS = [b"h:1:default", b"h:2:q,default", b"h", b"h\xff:3:q", b"h:4:\r\x1b[31m"]
#: Job ids the payloads carry and the status keys use.
JOBS = ["c" * 32, "d" * 32]
#: Members of the delayed schedule: seconds, and what is no second.
STAMPS = [b"100", b"1700000000", b"soon", b"-5", b"1e3", b"\xff"]

NAMESPACED = K.namespace.encode() + b":"


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
hostile_text = st.one_of(
    texts,
    st.sampled_from(["\x1b[2J", "\r\n", "\x00", "<script>x</script>", "\u202e", "\x9b"]),
)
numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**63, 10**400, 1e300, -1e300, 253402351199, -62135647200]),
)
json_leaf = st.none() | st.booleans() | numbers | hostile_text
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
times_text = st.one_of(
    st.just(timefmt.heartbeat()),
    st.just(timefmt.run_at()),
    st.just(timefmt.started()),
    st.just(timefmt.failed_at()),
    st.sampled_from(
        ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01 00:00:00 +1400"]
    ),
    hostile_text,
)


def maybe(field: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value, or a value of any other type."""
    return st.one_of(field, field, json_value)


@st.composite
def record(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """An object with each of ``fields`` present or not, plus a stray field or two."""
    out: dict[str, Any] = draw(st.dictionaries(texts, json_value, max_size=2))
    for name, value in fields.items():
        if draw(st.integers(0, 4)):
            out[name] = draw(maybe(value))
    return out


payloads = record(
    {
        "class": st.sampled_from(["C", "Job::Work::TestJob", "", "<b>x</b>"]) | hostile_text,
        "args": st.lists(json_value, max_size=3),
        "id": st.sampled_from(JOBS) | hostile_text,
        "queue_time": numbers,
        "queue": st.sampled_from([q.decode("utf-8", "replace") for q in QUEUES]) | hostile_text,
        "scheduled_for": numbers,
        "attempts": st.integers(-2, 5),
    }
)
failures = record(
    {
        "failed_at": times_text,
        "payload": payloads | hostile_text,
        "exception": hostile_text,
        "error": hostile_text,
        "backtrace": st.lists(hostile_text, max_size=3),
        "worker": st.sampled_from(WORKERS).map(lambda b: b.decode("utf-8", "replace")),
        "queue": st.sampled_from(["q", "default", "", "a b"]) | hostile_text,
    }
)
busy = record({"queue": hostile_text, "run_at": times_text, "payload": payloads | hostile_text})
statuses = record(
    {
        "status": st.integers(-1, 6) | st.sampled_from([1.5, True, "2"]),
        "updated": numbers,
        "started": numbers,
    }
)


def as_json(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    def dump(value: Any) -> bytes:
        return json.dumps(value).encode("utf-8", "surrogatepass")

    return strategy.map(dump)


#: Any value of a string, a list item, a set or hash member: what the layout's readers
#: meet, weighted towards the shapes they expect.
values = st.one_of(
    st.binary(max_size=40),
    hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    as_json(json_value),
    as_json(payloads),
    as_json(failures),
    as_json(busy),
    as_json(statuses),
    times_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [b"12", b"-3", b"12abc", b"1.5", b"9" * 30, b"1e400", b"nan", b"-inf", b"1" + b"0" * 5000]
    ),
    st.sampled_from([101, 150, 1500, 100_000]).map(deep),
    st.sampled_from([101, 1500]).map(lambda n: b'{"class":"C","args":' + deep(n) + b"}"),
)
scores = st.floats(allow_nan=False, allow_infinity=True) | st.sampled_from([100.0, 1.7e9])


@dataclass(frozen=True)
class Entry:
    kind: str  #: string, list, set, zset, hash
    items: tuple[Any, ...]  #: the value (string), items, members, (member, score), (field, value)


@dataclass(frozen=True)
class World:
    entries: dict[bytes, Entry]

    def size(self) -> int:
        return sum(len(e.items) for e in self.entries.values())


def layout_keys() -> dict[bytes, tuple[str, st.SearchStrategy[Any]]]:
    """Every key of the layout a reader may look at: (its right type, what members it has)."""

    def key(text: str) -> bytes:
        return text.encode()

    keys: dict[bytes, tuple[str, st.SearchStrategy[Any]]] = {
        key(K.queues): ("set", st.sampled_from(QUEUES) | values),
        key(K.workers): ("set", st.sampled_from(WORKERS) | values),
        key(K.heartbeat): ("hash", st.tuples(st.sampled_from(WORKERS) | values, values)),
        key(K.failed): ("list", as_json(failures) | values),
        key(K.stat("processed")): ("string", values),
        key(K.stat("failed")): ("string", values),
        key(K.delayed_schedule): ("zset", st.tuples(st.sampled_from(STAMPS) | values, scores)),
    }
    for name in QUEUES:
        keys[NAMESPACED + b"queue:" + name] = ("list", as_json(payloads) | values)
    for wid in WORKERS:
        keys[NAMESPACED + b"worker:" + wid] = ("string", as_json(busy) | values)
        keys[NAMESPACED + b"worker:" + wid + b":started"] = ("string", values)
        for stat in (b"processed", b"failed"):
            keys[NAMESPACED + b"stat:" + stat + b":" + wid] = ("string", values)
    for job in JOBS:
        keys[key(K.status(job))] = ("string", as_json(statuses) | values)
    for stamp in STAMPS:
        keys[NAMESPACED + b"delayed:" + stamp] = ("list", as_json(payloads) | values)
    return keys


LAYOUT = layout_keys()

#: Thread ids of ``--threads N`` (``host:pid:queues:tK``) gone wrong: no K, K 0, K past any
#: int64, a negative K, a queue named like a thread field, not UTF-8, and one well formed.
THREADS = [
    b"h:1:q:t",
    b"h:1:q:t0",
    b"h:1:q:t99999999999999999999",
    b"h:1:q:t-1",
    b"h:1:x:t3",
    b"h:1:q:t2\xff",
    b"h:1:default:t1",
]
#: Limiter names: plain, one like a thread field, not UTF-8, markup.
LIMITERS = [b"erp", b"x:t3", b"\xff\xfe", b"<b>x</b>"]
#: What the limits hash may hold for a K: right, zero, negative, a float past any double,
#: digits int() refuses (a superscript, 5,000 of them), a word.
SIZES = [b"2", b"0", b"-1", b"1e999", "\u00b2".encode(), b"9" * 5000, b"abc", b"nan"]
parked_records = record(
    {
        "queue": st.sampled_from([q.decode("utf-8", "replace") for q in QUEUES]) | hostile_text,
        "payload": as_json(payloads).map(lambda b: b.decode("utf-8", "surrogatepass"))
        | hostile_text,
    }
)


def limit_layout_keys() -> dict[bytes, tuple[str, st.SearchStrategy[Any]]]:
    """The layout with issue 14's keys: the limits hash, each limiter's holders and parked
    jobs, and worker thread ids in the workers set, the heartbeat hash and per-worker keys."""
    keys = dict(LAYOUT)
    ids = st.sampled_from(WORKERS + THREADS) | values
    keys[K.workers.encode()] = ("set", ids)
    keys[K.heartbeat.encode()] = ("hash", st.tuples(ids, values))
    for wid in THREADS:
        keys[NAMESPACED + b"worker:" + wid] = ("string", as_json(busy) | values)
        keys[NAMESPACED + b"worker:" + wid + b":started"] = ("string", values)
    keys[K.limits.encode()] = (
        "hash",
        st.tuples(st.sampled_from(LIMITERS) | values, st.sampled_from(SIZES) | values),
    )
    for name in LIMITERS:
        keys[K.limit_holders_prefix.encode() + name] = ("zset", st.tuples(ids, scores))
        keys[K.limit_parked_prefix.encode() + name] = ("list", as_json(parked_records) | values)
    return keys


LIMIT_LAYOUT = limit_layout_keys()
KINDS = ["string", "list", "set", "zset", "hash"]


@st.composite
def entries(draw: st.DrawFn, right: str, member: st.SearchStrategy[Any]) -> Entry:
    """A key's value: mostly of its right type, else of any other."""
    kind = right if draw(st.integers(0, 5)) else draw(st.sampled_from(KINDS))
    if kind == right:
        items = draw(st.lists(member, min_size=1, max_size=4))
    elif kind == "zset":
        items = draw(st.lists(st.tuples(values, scores), min_size=1, max_size=3))
    elif kind == "hash":
        items = draw(st.lists(st.tuples(values, values), min_size=1, max_size=3))
    else:
        items = draw(st.lists(values, min_size=1, max_size=3))
    if kind == "string":
        items = items[:1]
    return Entry(kind, tuple(items))


@st.composite
def worlds(
    draw: st.DrawFn, layout: dict[bytes, tuple[str, st.SearchStrategy[Any]]] = LAYOUT
) -> World:
    """Some of ``layout``'s keys (each with what it holds); the rest absent."""
    chosen = draw(st.lists(st.sampled_from(sorted(layout)), min_size=1, max_size=12, unique=True))
    followed = [K.failed, K.queues, K.workers, K.delayed_schedule]  # what readers follow
    if K.limits.encode() in layout:
        followed.append(K.limits)
    for key in followed:
        if draw(st.booleans()) and key.encode() not in chosen:
            chosen.append(key.encode())
    return World({k: draw(entries(*layout[k])) for k in chosen})


def _bytes(value: Any) -> bytes:
    if isinstance(value, tuple):  # a (member, score) or (field, value) meant for a list
        value = value[0]
    return value if isinstance(value, bytes) else str(value).encode()


def write(raw: Any, world: World) -> None:
    """Replace everything in ``raw``'s database with ``world`` (one pipeline)."""
    with raw.pipeline(transaction=False) as pipe:
        pipe.flushdb()
        for key, entry in world.entries.items():
            items = entry.items
            if entry.kind == "string":
                pipe.set(key, _bytes(items[0]))
            elif entry.kind == "list":
                pipe.rpush(key, *map(_bytes, items))
            elif entry.kind == "set":
                pipe.sadd(key, *map(_bytes, items))
            elif entry.kind == "zset":
                pipe.zadd(key, {_bytes(m): s for m, s in items})
            else:
                pipe.hset(key, mapping={_bytes(f): _bytes(v) for f, v in items})
        pipe.execute()


#: Bytes no page, API answer or terminal line may carry raw.
CONTROLS = {"\x1b", "\r", "\x00", "\x07", "\x9b", "\u202e"}
