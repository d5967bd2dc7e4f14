"""SOQL IN lists: quoting by format_soql, chunking by count and by length."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest

from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.salesforce.tasks import (
    KEYS_PER_QUERY,
    MAX_ENCODED_QUERY_BYTES,
    UPSERT_BATCH_SIZE,
    _batches,
    in_queries,
)

PREFIX = "SELECT Id FROM Task WHERE Message_ID__c"


def test_in_queries__quote_and_backslash_escaped() -> None:
    (soql,) = in_queries(PREFIX, [["<o'neil.20240101@example.com>"], ["<a\\b@x.example>"]], max_groups=10)
    assert soql == (
        "SELECT Id FROM Task WHERE Message_ID__c IN "
        "('<o\\'neil.20240101@example.com>','<a\\\\b@x.example>')"
    )


def test_in_queries__like_wildcards_stay_literal_with_in() -> None:
    (soql,) = in_queries(PREFIX, [["<a_b%c@example.com>"]], max_groups=10)
    assert soql.endswith("IN ('<a_b%c@example.com>')")
    assert " LIKE " not in soql


def test_in_queries__chunked_by_key_count() -> None:
    keys = [f"<k{i}@x.example>" for i in range(250)]
    groups = [key_spellings(key) for key in keys]
    queries = list(in_queries(PREFIX, groups, max_groups=KEYS_PER_QUERY))
    assert len(queries) == 3
    for key in keys:
        matching = [soql for soql in queries if f"'{key}'" in soql]
        assert len(matching) == 1
        # Both spellings of one key travel in the same query.
        assert f"'{key[1:-1]}'" in matching[0]


def test_in_queries__chunked_by_encoded_length() -> None:
    keys = [f"<{'x' * 200}{i}@host.example>" for i in range(100)]
    queries = list(in_queries(PREFIX, [[key] for key in keys], max_groups=KEYS_PER_QUERY))
    assert len(queries) > 1
    for soql in queries:
        assert len(quote_plus(soql)) <= MAX_ENCODED_QUERY_BYTES
    assert sum(soql.count("@host.example>") for soql in queries) == 100


def test_in_queries__suffix_after_the_list() -> None:
    (soql,) = in_queries("SELECT Id FROM Lead WHERE Email", [["a@x.example"]], max_groups=5,
                         suffix=" AND IsConverted = false")
    assert soql.endswith("IN ('a@x.example') AND IsConverted = false")


def test_in_queries__no_groups_no_query() -> None:
    assert list(in_queries(PREFIX, [], max_groups=10)) == []


def test_in_queries__oversized_value_rejected() -> None:
    with pytest.raises(ValueError):
        list(in_queries(PREFIX, [["<" + "%" * 5000 + "@x>"]], max_groups=10))


def test_batches__at_most_200_records_each() -> None:
    records = [{"Message_ID__c": f"<k{i}@x.example>"} for i in range(450)]
    batches = _batches(records, "Message_ID__c")
    assert [len(batch) for batch in batches] == [UPSERT_BATCH_SIZE, UPSERT_BATCH_SIZE, 50]
    assert [record for batch in batches for record in batch] == records


def test_batches__repeated_key_goes_to_the_next_request() -> None:
    records = [
        {"Message_ID__c": "<a@x.example>"},
        {"Message_ID__c": "<b@x.example>"},
        {"Message_ID__c": "<a@x.example>"},
    ]
    batches = _batches(records, "Message_ID__c")
    assert [len(batch) for batch in batches] == [2, 1]
    assert [record for batch in batches for record in batch] == records
