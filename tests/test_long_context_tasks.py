"""Needle-in-a-haystack tasks without a model: haystacks, needle insertion, prompts of exact length, scoring."""

import re

import pytest

from armillary.algorithms.long_context.haystacks import source_text
from armillary.algorithms.long_context.tasks import (
    CITIES, NOISE_TEXT, Cell, PromptFrame, RecallTable, Task, any_number, build_prompt, cell_grid, contained,
    insertion_point, needle_text, noise_haystack_text, prose_paragraphs, recall, sentence_boundaries,
    tokenize_haystack,
)


class WordTokenizer:
    """A toy tokenizer: each token is a word with its leading whitespace; ids grow as words are seen."""

    def __init__(self):
        self.vocab: dict[str, int] = {}
        self.texts: list[str] = []

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in re.findall(r"\s*\S+", text):
            if piece not in self.vocab:
                self.vocab[piece] = len(self.texts)
                self.texts.append(piece)
            ids.append(self.vocab[piece])
        return ids

    def decode(self, ids) -> str:
        return "".join(self.texts[i] for i in ids)


@pytest.fixture
def tok():
    return WordTokenizer()


def frame_for(tok: WordTokenizer) -> PromptFrame:
    return PromptFrame(head=tuple(tok.encode("<s> Instruction: find the numbers.\n")),
                       tail_for=lambda q, a: tuple(tok.encode(f"\n{q}\n{a}")),
                       encode_needle=lambda text: tuple(tok.encode(" " + text)))


def haystack(tok, name="noise", text=None):
    return tokenize_haystack(name, text or noise_haystack_text(20_000), tok.encode, lambda i: tok.texts[i])


def test_sentence_boundaries_follow_sentence_ends_only():
    texts = ["The", " sky", " is", " blue.", " Pi", " is", " 3.14", " e.g.", "x", " end."]
    assert sentence_boundaries(texts) == [0, 4, 10]


def test_insertion_point_backs_up_to_the_previous_sentence_end():
    boundaries = [0, 5, 11, 20, 30]
    assert insertion_point(boundaries, 30, 0.0) == 0
    assert insertion_point(boundaries, 30, 0.5) == 11      # target 15 → the sentence end before it
    assert insertion_point(boundaries, 30, 1.0) == 30
    assert insertion_point(boundaries, 25, 1.0) == 20      # 30 is past the budget


def test_single_needle_prompt_is_exact_length_and_holds_the_needle_whole_at_a_sentence_boundary(tok):
    hay, frame = haystack(tok), frame_for(tok)
    for depth_index in range(5):
        cell = Cell(Task.SINGLE, "noise", 300, depth_index, 5, draw=0)
        prompt = build_prompt(cell, hay, frame, seed=0, num_needles=1)
        assert len(prompt.ids) == 300
        (needle,) = prompt.needles
        needle_ids = frame.encode_needle(needle_text(Task.SINGLE, needle.city, needle.number))
        start = len(frame.head) + needle.position
        assert prompt.ids[start:start + len(needle_ids)] == needle_ids
        before = tok.decode(prompt.ids[len(frame.head):start])
        assert before == "" or before.endswith(".")
        assert prompt.references == (str(needle.number),)
        assert re.fullmatch(r"\d{7}", prompt.references[0])
        assert prompt.shared_prefix == start
    text = tok.decode(prompt.ids)
    assert text.count("special magic") == 3  # the needle, the question and the answer prefix


def test_needle_depth_increases_with_the_depth_index_and_spans_the_context(tok):
    hay, frame = haystack(tok), frame_for(tok)
    depths = [build_prompt(Cell(Task.SINGLE, "noise", 500, i, 10, 0), hay, frame, 0, 1).needles[0].depth
              for i in range(10)]
    assert depths == sorted(depths) and depths[0] == 0.0 and depths[-1] > 0.95
    assert all(abs(d - i / 9) < 0.05 for i, d in enumerate(depths))


def test_cells_of_one_length_share_the_prefix_up_to_their_needle(tok):
    hay, frame = haystack(tok), frame_for(tok)
    prompts = [build_prompt(Cell(task, "noise", 400, i, 4, draw), hay, frame, 0, 3)
               for task in (Task.SINGLE, Task.MULTI_KEY, Task.ABSENT) for i in (None, 0, 2, 3) for draw in (0, 1)
               if (task == Task.ABSENT) == (i is None)]
    reference = tuple(frame.head) + hay.ids
    for prompt in prompts:
        assert prompt.ids[:prompt.shared_prefix] == reference[:prompt.shared_prefix]


def test_city_and_number_are_drawn_per_cell_and_seed_and_reproducible(tok):
    hay, frame = haystack(tok), frame_for(tok)
    cell = Cell(Task.SINGLE, "noise", 300, 2, 5, draw=0)
    again = build_prompt(cell, hay, frame, 0, 1)
    assert build_prompt(cell, hay, frame, 0, 1) == again
    numbers = {build_prompt(Cell(Task.SINGLE, "noise", 300, 2, 5, d), hay, frame, s, 1).references[0]
               for d in range(5) for s in range(2)}
    assert len(numbers) == 10
    cities = {build_prompt(Cell(Task.SINGLE, "noise", 300, i, 5, 0), hay, frame, 0, 1).asked_cities for i in range(5)}
    assert len(cities) > 1


def test_multi_key_asks_one_needle_among_distractors(tok):
    hay, frame = haystack(tok), frame_for(tok)
    prompt = build_prompt(Cell(Task.MULTI_KEY, "noise", 600, 3, 5, 0), hay, frame, 0, 4)
    assert len(prompt.needles) == 4 and len({n.city for n in prompt.needles}) == 4
    assert [n.asked for n in prompt.needles] == [True, False, False, False]
    assert prompt.references == (str(prompt.needles[0].number),)
    text = tok.decode(prompt.ids)
    assert f"for {prompt.needles[0].city} mentioned" in text
    for needle in prompt.needles:
        assert f"One of the special magic numbers for {needle.city} is: {needle.number}." in text
    assert len(prompt.ids) == 600


def test_multi_value_asks_every_value_of_one_key(tok):
    hay, frame = haystack(tok), frame_for(tok)
    prompt = build_prompt(Cell(Task.MULTI_VALUE, "noise", 600, 1, 5, 0), hay, frame, 0, 3)
    assert len({n.city for n in prompt.needles}) == 1
    assert len(set(prompt.references)) == 3 and all(n.asked for n in prompt.needles)
    assert "What are all the special magic numbers for" in tok.decode(prompt.ids)


def test_multi_needle_asks_every_city(tok):
    hay, frame = haystack(tok), frame_for(tok)
    prompt = build_prompt(Cell(Task.MULTI_NEEDLE, "noise", 600, 0, 5, 0), hay, frame, 0, 4)
    assert len(prompt.references) == 4 and prompt.needles[0].position == 0
    positions = [n.position for n in prompt.needles]
    assert len(set(positions)) == 4
    question = tok.decode(prompt.ids[-40:])
    assert all(n.city in question for n in prompt.needles)


def test_absent_control_never_shows_the_number(tok):
    hay, frame = haystack(tok), frame_for(tok)
    prompt = build_prompt(Cell(Task.ABSENT, "noise", 300, None, 5, 0), hay, frame, 0, 1)
    assert prompt.needles == ()
    assert prompt.references[0] not in tok.decode(prompt.ids)
    assert "special magic" in tok.decode(prompt.ids) and len(prompt.ids) == 300


def test_too_short_a_length_or_haystack_is_refused(tok):
    hay, frame = haystack(tok), frame_for(tok)
    with pytest.raises(ValueError, match="choose a longer context length"):
        build_prompt(Cell(Task.SINGLE, "noise", 30, 0, 5, 0), hay, frame, 0, 1)
    small = haystack(tok, text=NOISE_TEXT)
    with pytest.raises(ValueError, match="tokens, .* needed"):
        build_prompt(Cell(Task.SINGLE, "noise", 300, 0, 5, 0), small, frame, 0, 1)
    with pytest.raises(ValueError, match="empty"):
        tokenize_haystack("x", "  \n", tok.encode, lambda i: tok.texts[i])


def test_cell_grid_covers_lengths_depths_draws_and_the_control_once_per_draw():
    cells = cell_grid([Task.SINGLE, Task.ABSENT], ["noise"], [1024, 2048], depths=10, draws=3)
    assert sum(c.task == Task.SINGLE for c in cells) == 2 * 10 * 3
    assert sum(c.task == Task.ABSENT for c in cells) == 2 * 3
    assert len({c.key for c in cells}) == len(cells)
    assert [c.depth for c in cells[:30:3]] == pytest.approx([i / 9 for i in range(10)])


def test_scoring_is_exact_case_insensitive_containment():
    assert contained("The number is 1234567.", ["1234567", "7654321"]) == [True, False]
    assert recall("numbers: 1234567 and 7654321", ["1234567", "7654321", "1111111"]) == pytest.approx(2 / 3)
    assert recall("1,234,567", ["1234567"]) == 0.0  # exact: a reformatted number does not count
    assert contained("ABC", ["abc"]) == [True]
    assert any_number("it is 9876543") and not any_number("it is 98765") and not any_number("12345678")
    with pytest.raises(ValueError):
        recall("x", [])


def test_recall_table_averages_draws_per_cell_and_writes_markdown():
    rows = [{"length": 1024, "depth": 0.0, "recall": 1.0}, {"length": 1024, "depth": 0.0, "recall": 0.0},
            {"length": 1024, "depth": 1.0, "recall": 1.0}, {"length": 2048, "depth": 0.0, "recall": 0.5}]
    table = RecallTable.from_rows(rows)
    assert table.mean[(1024, 0.0)] == 0.5 and table.by_length() == {1024: pytest.approx(2 / 3), 2048: 0.5}
    text = table.markdown("t")
    assert "| 1024 | 50 | 100 | 66.7 |" in text and "| 2048 | 50 |  | 50.0 |" in text


def test_prose_filter_keeps_sentences_and_drops_code_and_grammar():
    text = ("This is a paragraph of ordinary prose with more than twelve words in it, ending well.\n\n"
            "   for x in range(3):\n       print(x)\n\n"
            "expr ::= a | b | c ( d ) [ e ] { f } g h i j k l m.\n\nToo short.")
    assert prose_paragraphs(text) == ["This is a paragraph of ordinary prose with more than twelve words in it, ending well."]


def test_builtin_haystack_sources_are_offline_and_non_empty():
    noise = source_text("noise")
    assert noise.startswith(NOISE_TEXT) and len(noise) > 100_000
    prose = source_text("pyref")
    assert len(prose) > 50_000 and "The" in prose
    with pytest.raises(ValueError, match="unknown haystack"):
        source_text("essays")


def test_an_empty_or_missing_haystack_file_is_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="no paragraph of prose"):
        source_text(f"file:{empty}")
    with pytest.raises(ValueError, match="no file at"):
        source_text(f"file:{tmp_path / 'missing.txt'}")


def test_cities_are_distinct():
    assert len(set(CITIES)) == len(CITIES) >= 50
