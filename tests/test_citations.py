"""Citation markers are resolved against the numbered context; markers pointing nowhere are flagged."""

from __future__ import annotations

from rag.citations import check, cited_numbers, resolve, says_not_found, split_claims
from rag.types import SearchResult


def _results(n: int) -> list[SearchResult]:
    return [SearchResult(f"d:{i}", f"text {i}", 1.0 - i / 10, {"source": f"/f{i}.txt", "page": i}) for i in range(n)]


def test_markers_in_all_common_forms() -> None:
    assert cited_numbers("A [2]. B [1, 3]. C [4][2]. D [5-6].") == [2, 1, 3, 4, 5, 6]
    assert cited_numbers("no citations here, just [brackets]") == []


def test_resolve_maps_numbers_to_chunks_and_flags_invalid_ones() -> None:
    citations, invalid = resolve("Born in 1968 [2], moved in 1990 [7].", _results(3))
    assert [(c.n, c.id, c.source, c.page) for c in citations] == [(2, "d:1", "/f1.txt", 1)]
    assert invalid == [7]


def test_not_found_detection() -> None:
    assert says_not_found("The documents do not contain information about that.")
    assert not says_not_found("He was born in 1968 [1].")


def test_claims_are_split_by_sentence_with_their_markers() -> None:
    assert split_claims("Born in 1968 [2]. Moved [1, 3]. Then nothing.") == [
        ("Born in 1968.", [2]),
        ("Moved.", [1, 3]),
        ("Then nothing.", []),
    ]


def test_a_claim_is_supported_by_words_and_numbers_of_its_block() -> None:
    block = [SearchResult("a:0", "The bridge opened in 1932. It spans 503 metres across the harbour.", 1.0, {})]
    (ok, changed_number, unrelated) = check(
        "The bridge opened in 1932 [1]. It opened in 1933 [1]. Penguins dance at night [1].", block
    )
    assert ok.supported == {1: True} and ok.quotes[1] == "The bridge opened in 1932."
    assert changed_number.supported == {1: False}, "a number the block does not state is not supported"
    assert unrelated.supported == {1: False}
    citations, _ = resolve("The bridge opened in 1932 [1].", block, [ok])
    assert citations[0].supported and citations[0].quote == "The bridge opened in 1932."
