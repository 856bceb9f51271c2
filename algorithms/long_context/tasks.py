"""Needle-in-a-haystack tasks as token sequences: haystacks, needles at sentence boundaries, prompts, scoring.

Pure Python (no torch, no Ray). Everything is built at the token level in the evaluated model's own tokenizer:
the haystack is tokenised once, trimmed to the number of tokens that makes the whole prompt exactly the cell's
context length, and each needle's own tokens (encoded without special tokens) are spliced in at a sentence boundary.
The concatenated string is never re-tokenised, so the model reads exactly the needle it was given, and every cell
of one length shares the same token prefix up to its first needle (what the KV-cache reuse relies on).

Tasks (PAPERS.md §8):
- single: one needle "The special magic {city} number is: {number}." at depth d; the question asks for its number.
- multi-needle (Gemini 1.5): K needles with distinct cities, the first at depth d, the others at sentence boundaries
  drawn per cell; the question asks for every city's number; recall is the fraction retrieved.
- multi-key (RULER niah_multikey): K needles "One of the special magic numbers for {city} is: {number}." with
  distinct cities; one (at depth d) is asked for, the others are distractors.
- multi-value (RULER niah_multivalue): K needles with the same city and different numbers; all are asked for.
- absent (control): no needle at all; the question asks for a city's number anyway. Recall here is how often the
  model produces the drawn number without having seen it (chance level for a 7-digit number is ~1e-7).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Sequence


class Task(str, Enum):
    SINGLE = "single"
    MULTI_NEEDLE = "multi-needle"
    MULTI_KEY = "multi-key"
    MULTI_VALUE = "multi-value"
    ABSENT = "absent"


# RULER's noise haystack: five short sentences repeated until the context is full.
NOISE_TEXT = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."

# Keys of the needles. A city and a number are drawn per cell and draw, so no answer can have been memorised.
CITIES = (
    "Amsterdam", "Athens", "Auckland", "Baghdad", "Bangkok", "Barcelona", "Beijing", "Berlin", "Bogota", "Boston",
    "Brussels", "Budapest", "Buenos Aires", "Cairo", "Cape Town", "Caracas", "Chicago", "Copenhagen", "Dakar", "Delhi",
    "Dublin", "Dubai", "Edinburgh", "Florence", "Geneva", "Hanoi", "Havana", "Helsinki", "Istanbul", "Jakarta",
    "Johannesburg", "Kabul", "Kyoto", "Lagos", "Lima", "Lisbon", "London", "Los Angeles", "Madrid", "Manila",
    "Marseille", "Melbourne", "Mexico City", "Miami", "Milan", "Montreal", "Moscow", "Mumbai", "Munich", "Nairobi",
    "Naples", "Oslo", "Ottawa", "Paris", "Prague", "Quito", "Reykjavik", "Riga", "Rome", "San Francisco", "Santiago",
    "Seattle", "Seoul", "Shanghai", "Singapore", "Stockholm", "Sydney", "Taipei", "Tehran", "Tokyo", "Toronto",
    "Valencia", "Vancouver", "Venice", "Vienna", "Warsaw", "Zurich",
)
NUMBER_DIGITS = 7
NUMBER_PATTERN = re.compile(r"(?<!\d)\d{7}(?!\d)")

INSTRUCTION = ("Some special magic numbers are hidden within the following text. Make sure to memorize them. "
               "I will quiz you about the numbers afterwards.")
SENTENCE_END = (".", "!", "?")


def needle_text(task: Task, city: str, number: int) -> str:
    if task in (Task.MULTI_KEY, Task.MULTI_VALUE):
        return f"One of the special magic numbers for {city} is: {number}."
    return f"The special magic {city} number is: {number}."


def question_and_answer_prefix(task: Task, cities: Sequence[str]) -> tuple[str, str]:
    """The question after the context, and the start of the answer the model continues (RULER's answer prefix)."""
    if task in (Task.SINGLE, Task.ABSENT):
        (city,) = cities
        return (f"What is the special magic {city} number mentioned in the provided text?",
                f"The special magic {city} number mentioned in the provided text is")
    if task == Task.MULTI_NEEDLE:
        listed = ", ".join(cities[:-1]) + f" and {cities[-1]}"
        return (f"What are the special magic numbers for {listed} mentioned in the provided text?",
                f"The special magic numbers for {listed} mentioned in the provided text are")
    if task == Task.MULTI_KEY:
        return (f"What is the special magic number for {cities[0]} mentioned in the provided text?",
                f"The special magic number for {cities[0]} mentioned in the provided text is")
    (city,) = set(cities)
    return (f"What are all the special magic numbers for {city} mentioned in the provided text?",
            f"The special magic numbers for {city} mentioned in the provided text are")


# ---------------------------------------------------------------------------------------------------- haystacks
def noise_haystack_text(min_chars: int) -> str:
    repeats = min_chars // len(NOISE_TEXT) + 1
    return " ".join([NOISE_TEXT] * repeats)


def prose_paragraphs(text: str) -> list[str]:
    """Paragraphs of running prose from a document: whitespace-normalised, code, grammar and tables dropped.

    A paragraph is kept if it ends a sentence, has at least two sentences' worth of words and is mostly letters
    and spaces — the Python reference's grammar rules, examples and tables fail one of these.
    """
    kept = []
    for block in re.split(r"\n\s*\n", text):
        if any(line.startswith(("   ", ">>>", "...", "\t")) for line in block.splitlines()):
            continue
        paragraph = " ".join(block.split())
        letters = sum(ch.isalpha() or ch == " " for ch in paragraph)
        if (len(paragraph.split()) >= 12 and paragraph.endswith(SENTENCE_END)
                and letters >= 0.9 * len(paragraph)):
            kept.append(paragraph)
    return kept


@dataclass(frozen=True)
class HaystackTokens:
    """A haystack in one tokenizer: its tokens and the sentence boundaries (indices a needle may be inserted at)."""

    name: str
    ids: tuple[int, ...]
    boundaries: tuple[int, ...]  # sorted; b means "before token b"; 0 is always one

    def __post_init__(self):
        if not self.ids:
            raise ValueError(f"haystack {self.name!r}: the source text gave no tokens")


def sentence_boundaries(token_texts: Sequence[str]) -> list[int]:
    """Indices b where a sentence ends just before token b: token b-1 ends with . ! or ? and token b starts with
    whitespace (so "3.14" or "e.g.x" are not boundaries). 0 is a boundary; so is len(tokens) if the text ends a
    sentence."""
    boundaries = [0]
    for b in range(1, len(token_texts) + 1):
        if token_texts[b - 1].rstrip().endswith(SENTENCE_END) and token_texts[b - 1].strip():
            if b == len(token_texts) or token_texts[b][:1].isspace() or token_texts[b - 1][-1:].isspace():
                boundaries.append(b)
    return boundaries


def tokenize_haystack(name: str, text: str, encode: Callable[[str], list[int]],
                      token_text: Callable[[int], str]) -> HaystackTokens:
    if not text.strip():
        raise ValueError(f"haystack {name!r}: the source text is empty")
    ids = encode(text)
    texts = [token_text(i) for i in ids]
    return HaystackTokens(name=name, ids=tuple(ids), boundaries=tuple(sentence_boundaries(texts)))


# ---------------------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class Cell:
    """One point of the sweep: a task on a haystack at a context length, the first needle at depth_index of
    `depths` linearly spaced depths (None for the absent control), one draw of cities and numbers."""

    task: Task
    haystack: str
    length: int
    depth_index: int | None
    depths: int
    draw: int

    @property
    def depth(self) -> float | None:
        if self.depth_index is None:
            return None
        return self.depth_index / (self.depths - 1) if self.depths > 1 else 0.0

    @property
    def key(self) -> str:
        depth = "none" if self.depth_index is None else f"d{self.depth_index:02d}of{self.depths}"
        return f"{self.task.value}__{self.haystack}__L{self.length}__{depth}__s{self.draw}"


def cell_grid(tasks: Sequence[Task], haystacks: Sequence[str], lengths: Sequence[int], depths: int,
              draws: int) -> list[Cell]:
    cells = []
    for task in tasks:
        for haystack in haystacks:
            for length in lengths:
                depth_indices: Sequence[int | None] = [None] if task == Task.ABSENT else range(depths)
                for depth_index in depth_indices:
                    for draw in range(draws):
                        cells.append(Cell(task, haystack, length, depth_index, depths, draw))
    return cells


@dataclass(frozen=True)
class PlacedNeedle:
    city: str
    number: int
    position: int          # token index in the haystack (before trimming of nothing: the haystack's own index)
    depth: float           # position / haystack tokens in the context
    asked: bool            # whether the question asks for this needle's number


@dataclass(frozen=True)
class Prompt:
    """A cell's prompt as tokens: head (template and instruction) + context (haystack with needles) + tail
    (question, end of turn, answer prefix). `shared_prefix` tokens are identical for every cell of the same
    haystack and head: the head and the haystack up to the first needle."""

    ids: tuple[int, ...]
    shared_prefix: int
    needles: tuple[PlacedNeedle, ...]
    references: tuple[str, ...]
    asked_cities: tuple[str, ...]


@dataclass(frozen=True)
class PromptFrame:
    """The model-specific text around the context: render(question_and_prefix) → (head ids, tail ids)."""

    head: tuple[int, ...]
    tail_for: Callable[[str, str], tuple[int, ...]]
    encode_needle: Callable[[str], tuple[int, ...]]


def cell_rng(cell: Cell, seed: int) -> random.Random:
    # Seeding with a string is stable across processes and Python runs (sha512 of the text).
    return random.Random(f"{seed}/{cell.task.value}/{cell.haystack}/{cell.length}/{cell.depth_index}/{cell.draw}")


def draw_needles(task: Task, rng: random.Random, num_needles: int) -> list[tuple[str, int]]:
    """(city, number) per needle; the asked-for needle first. Numbers are distinct 7-digit numbers."""
    count = 1 if task in (Task.SINGLE, Task.ABSENT) else num_needles
    numbers = rng.sample(range(10 ** (NUMBER_DIGITS - 1), 10 ** NUMBER_DIGITS), count)
    if task == Task.MULTI_VALUE:
        cities = [rng.choice(CITIES)] * count
    else:
        cities = rng.sample(CITIES, count)
    return list(zip(cities, numbers))


def insertion_point(boundaries: Sequence[int], budget: int, depth: float) -> int:
    """The last sentence boundary at or before depth × budget tokens (gkamradt's harness backs up to the previous
    sentence end the same way), among the boundaries that fit in the budget."""
    target = depth * budget
    best = 0
    for b in boundaries:
        if b > budget or b > target + 1e-9:
            break
        best = b
    return best


def build_prompt(cell: Cell, haystack: HaystackTokens, frame: PromptFrame, seed: int, num_needles: int) -> Prompt:
    """The cell's prompt, exactly `cell.length` tokens long (a ValueError if the head, tail and needles do not
    leave room, or the haystack is too short)."""
    rng = cell_rng(cell, seed)
    drawn = draw_needles(cell.task, rng, num_needles)
    asked = [city for city, _ in drawn] if cell.task == Task.MULTI_NEEDLE else [drawn[0][0]]
    question, answer_prefix = question_and_answer_prefix(cell.task, asked if cell.task != Task.MULTI_VALUE
                                                         else [drawn[0][0]])
    tail = frame.tail_for(question, answer_prefix)
    needle_ids = [] if cell.task == Task.ABSENT else [frame.encode_needle(needle_text(cell.task, c, n)) for c, n in drawn]
    budget = cell.length - len(frame.head) - len(tail) - sum(len(ids) for ids in needle_ids)
    if budget < 1:
        raise ValueError(f"length {cell.length}: the template, question and needles alone take "
                         f"{cell.length - budget} tokens; choose a longer context length")
    if len(haystack.ids) < budget:
        raise ValueError(f"haystack {haystack.name!r}: {len(haystack.ids)} tokens, {budget} needed for length "
                         f"{cell.length}")
    context = list(haystack.ids[:budget])
    placed: list[PlacedNeedle] = []
    if needle_ids:
        fitting = [b for b in haystack.boundaries if b <= budget]
        first = insertion_point(fitting, budget, cell.depth)
        others = [b for b in fitting if b != first]
        if len(others) < len(needle_ids) - 1:
            raise ValueError(f"haystack {haystack.name!r} at length {cell.length}: {len(fitting)} sentence "
                             f"boundaries, fewer than the {len(needle_ids)} needles")
        positions = [first] + rng.sample(others, len(needle_ids) - 1)
        # Insert from the back so earlier positions stay valid.
        for (city, number), ids, position in sorted(zip(drawn, needle_ids, positions), key=lambda t: -t[2]):
            context[position:position] = ids
        for index, ((city, number), position) in enumerate(zip(drawn, positions)):
            is_asked = cell.task in (Task.MULTI_NEEDLE, Task.MULTI_VALUE) or index == 0
            placed.append(PlacedNeedle(city, number, position, position / budget, is_asked))
        shared = len(frame.head) + min(positions)
    else:
        shared = len(frame.head) + budget
    ids = tuple(frame.head) + tuple(context) + tuple(tail)
    assert len(ids) == cell.length, (len(ids), cell.length)
    if cell.task == Task.ABSENT:
        references = (str(drawn[0][1]),)
    else:
        references = tuple(str(n.number) for n in placed if n.asked)
    return Prompt(ids=ids, shared_prefix=shared, needles=tuple(placed), references=references,
                  asked_cities=tuple(dict.fromkeys(asked)))


# ---------------------------------------------------------------------------------------------------- scoring
def contained(output: str, references: Sequence[str]) -> list[bool]:
    """Per reference: does the output contain it (case-insensitive, RULER's string_match_all)? No LLM judge."""
    lowered = output.lower()
    return [reference.lower() in lowered for reference in references]


def recall(output: str, references: Sequence[str]) -> float:
    """The fraction of the references the output contains (1 or 0 for a single needle)."""
    if not references:
        raise ValueError("recall needs at least one reference")
    hits = contained(output, references)
    return sum(hits) / len(hits)


def any_number(output: str) -> bool:
    """Whether the output states some 7-digit number (for the absent control: a confabulated answer)."""
    return NUMBER_PATTERN.search(output) is not None


@dataclass
class RecallTable:
    """Mean recall per (length, depth) of one task and haystack, from per-cell rows."""

    lengths: list[int] = field(default_factory=list)
    depths: list[float | None] = field(default_factory=list)
    mean: dict[tuple[int, float | None], float] = field(default_factory=dict)
    count: dict[tuple[int, float | None], int] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Sequence[dict]) -> "RecallTable":
        table = cls()
        sums: dict[tuple[int, float | None], float] = {}
        for row in rows:
            key = (row["length"], row["depth"])
            sums[key] = sums.get(key, 0.0) + row["recall"]
            table.count[key] = table.count.get(key, 0) + 1
        table.mean = {key: sums[key] / table.count[key] for key in sums}
        table.lengths = sorted({k[0] for k in sums})
        table.depths = sorted({k[1] for k in sums}, key=lambda d: -1 if d is None else d)
        return table

    def by_length(self) -> dict[int, float]:
        out = {}
        for length in self.lengths:
            keys = [k for k in self.mean if k[0] == length]
            total = sum(self.mean[k] * self.count[k] for k in keys)
            out[length] = total / sum(self.count[k] for k in keys)
        return out

    def markdown(self, title: str) -> str:
        depth_labels = ["—" if d is None else f"{100 * d:.0f}%" for d in self.depths]
        lines = [f"**{title}** (recall %, rows: context length in tokens, columns: depth of the needle)", "",
                 "| length | " + " | ".join(depth_labels) + " | mean |",
                 "|---:|" + "---:|" * (len(self.depths) + 1)]
        for length, mean in self.by_length().items():
            cells = [f"{100 * self.mean[(length, d)]:.0f}" if (length, d) in self.mean else "" for d in self.depths]
            lines.append(f"| {length} | " + " | ".join(cells) + f" | {100 * mean:.1f} |")
        return "\n".join(lines) + "\n"
