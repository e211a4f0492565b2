"""resque-scheduler's ``timestamps:`` index, and what labqueue keeps beside a delayed item.

resque-scheduler stores a delayed job as ``{"class":C,"args":A,"queue":Q}``, encoded as Ruby's
JSON does (compact, keys in that order), and indexes it: ``timestamps:<that exact text>`` is
the set of ``delayed:<ts>`` lists that hold it. ``Resque.remove_delayed(C, *A)`` encodes the
same three fields and looks the text up there, so an item with any other field (an id, an
exact time) is never found. labqueue therefore writes the item exactly as Ruby would and
keeps the rest, one *note* per copy, in ``<ns>:labqueue:scheduled:<ts>`` (a hash: item ->
notes, one line each: ``<exact due time> <the payload's other fields as JSON>``). Its mover
pairs each copy with a note (copies of one item are identical, so the order of pairing does
not matter) and pushes the item with the note's fields; an item without a note (Ruby's,
PHP's, or one whose note was dropped) moves at its second, as resque-scheduler moves it.

The trade-off: a labqueue job delayed here and moved by resque-scheduler loses its id (its
status stays "waiting") and its exact time (it moves at its second), since resque-scheduler
enqueues only class and args; the notes it leaves expire a week after their second.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from .keys import Keys
from .payload import QUEUE_FIELD, SCHEDULED_FOR_FIELD, Payload, dumps
from .scripts import UNSCHEDULE

#: Notes outlive their second by this long (seconds), if no mover of ours cleans them first.
NOTES_TTL = 7 * 24 * 3600


def _strict(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def ruby_item(class_name: str, args: Any, queue: str) -> str:
    """The item as resque-scheduler encodes it (``Resque.encode(job_to_hash_with_queue)``)."""
    return f'{{"class":{dumps(class_name)},"args":{_strict(args)},"queue":{dumps(queue)}}}'


def note(payload: Payload, at: float) -> str:
    """One copy's note: its exact due time, then its other fields as a JSON object's tail
    (``,"id":..,"queue_time":..,"scheduled_for":..``), pasted into the item when moved."""
    fields = {k: v for k, v in payload.to_dict().items() if k not in ("class", "args", QUEUE_FIELD)}
    fields[SCHEDULED_FOR_FIELD] = at
    tail = _strict(fields)[1:-1]
    return f"{at!r} ,{tail}" if tail else f"{at!r} "


def parse_notes(text: str | None) -> list[tuple[float, str]]:
    """(due time, tail) of each note of one item, in push order."""
    found = []
    for line in (text or "").split("\n"):
        at, _, tail = line.partition(" ")
        try:
            found.append((float(at), tail))
        except ValueError:
            continue
    return found


def with_note(item: str, tail: str) -> str:
    """The payload a noted item moves as: the item with the note's fields."""
    return item[:-1] + tail + "}" if item.endswith("}") else item


def unschedule(connection: redis.Redis, keys: Keys, triples: Sequence[tuple[str, str, str]]) -> int:
    """Remove delayed items, each ``(second or '', item, note or '')``: no second = every
    list the index names, as ``remove_delayed`` does; a note = that one copy. Returns how
    many list elements went (Ruby's count)."""
    if not triples:
        return 0
    flat = [part for triple in triples for part in triple]
    prefixes = (keys.delayed_prefix, keys.timestamps_prefix, keys.scheduled_prefix)
    args = (*prefixes, keys.delayed_member(""), *flat)
    return int(UNSCHEDULE.call(connection, (keys.delayed_schedule,), args))


def _matches(raw: str, class_name: str, args: Any, queue: str) -> bool:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(data, dict)
        and data.get("class") == class_name
        and data.get("args") == args
        and data.get(QUEUE_FIELD) == queue
    )


def remove_delayed(
    connection: redis.Redis, keys: Keys, class_name: str, args: list[Any], queue: str
) -> int:
    """``Resque.remove_delayed_in_queue(class, queue, *args)``, for anyone's items: by the
    index, then by a scan for items with the same class, args and queue that no index names
    (php-resque's, labqueue's retries). Returns how many went."""
    search = ruby_item(class_name, args, queue)
    triples = [("", search, "")]
    for second, raws in _buckets(connection, keys):
        found = {raw for raw in raws if _matches(raw, class_name, args, queue)}
        triples += [(second, raw, "") for raw in sorted(found)]
    return unschedule(connection, keys, triples)


def remove_delayed_id(connection: redis.Redis, keys: Keys, job_id: str) -> int:
    """Remove the delayed job (or retry) with id ``job_id``; returns 1, or 0 if none."""
    for second, raws in _buckets(connection, keys):
        notes = connection.hgetall(keys.scheduled(int(second)))
        for raw in set(raws):
            for line in str(notes.get(raw, "")).split("\n"):
                if f'"id":{dumps(job_id)}' in line:
                    return unschedule(connection, keys, [(second, raw, line)])
            try:
                if Payload.from_json(raw).id == job_id:
                    return unschedule(connection, keys, [(second, raw, "")])
            except Exception:
                continue
    return 0


def _buckets(connection: redis.Redis, keys: Keys) -> list[tuple[str, list[str]]]:
    seconds = [str(s) for s in connection.zrange(keys.delayed_schedule, 0, -1)]
    with connection.pipeline(transaction=False) as pipe:
        for second in seconds:
            pipe.lrange(keys.delayed_prefix + second, 0, -1)
        lists = pipe.execute() if seconds else []
    return list(zip(seconds, [[str(r) for r in found] for found in lists], strict=True))
