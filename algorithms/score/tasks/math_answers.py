"""MATH-style problems from the user's JSONL file and a final-answer checker.

The file holds one JSON object per line with "problem" and "answer" (a string or a number; an optional
"id" and "split"). The checker finds the final answer in a response — the last \\boxed{...} (nested braces
allowed), else "answer is X" / "#### X", else the last number — refuses a response that hedges (several
different final answers, or one that offers alternatives: `hedges`), normalises simple LaTeX (\\frac, \\dfrac,
\\tfrac, \\left/\\right, $...$, \\text{units}, thousands separators, a trailing period) and compares
exactly as rationals (Fraction) when both sides are numbers, else as normalised strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from armillary.algorithms.score.tasks.base import Problem, QuestionAnswerFormat, Verdict

INSTRUCTION = (
    "There may be an error in the solution above. Check each step, correct any error, and rewrite the "
    "solution with the final answer in \\boxed{}."
)
# The answer format asked of a chat model in turn 1 (chat.ChatTask), for every maths task.
ANSWER_FORMAT = "Give the final answer in \\boxed{}."

# ---- extraction ----------------------------------------------------------------------------------------


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at text[start] == '{', and the index after it."""
    if start >= len(text) or text[start] != "{":
        return None
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None  # unbalanced


def all_boxed(text: str) -> list[str]:
    """The contents of every \\boxed{...} or \\fbox{...} (or `\\boxed 5`), nested braces included, in order."""
    found = []
    for match in re.finditer(r"\\(?:boxed|fbox)\s*", text):
        group = _braced(text, match.end())
        if group is not None:
            found.append(group[0])
        else:
            bare = re.match(r"[^\s$]+", text[match.end() :])
            if bare and not bare.group(0).startswith("{"):
                found.append(bare.group(0))
    return found


def last_boxed(text: str) -> str | None:
    found = all_boxed(text)
    return found[-1] if found else None


_NUMBER = r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
# Between two numbers at the end of a response: "3 or 4", "3, or maybe 4", "3 and/or 4", "3, 4", "3; 4".
_OFFERS_ALTERNATIVES = re.compile(r"\\text\{\s*or\s*\}|\bor\b|\beither\b|\\(?:q?quad)\b", re.I)


def final_answers(text: str) -> list[str]:
    """Every final answer the response states, in the one form the checker reads: all \\boxed{} if there is one,
    else every "answer is X" line, else every "#### X", else the last number — with the number before it when the
    two are offered as alternatives ("3 or 4", "3, 4")."""
    if not isinstance(text, str):
        return []
    boxed = all_boxed(text)
    if boxed:
        return [b.strip() for b in boxed]
    phrase = re.findall(r"(?:final answer|answer)\s*(?:is|:)\s*\$?([^\n$]+?)\$?\s*(?:\.\s*)?$", text, flags=re.I | re.M)
    if phrase:
        return [p.strip() for p in phrase]
    hashes = re.findall(r"####\s*([^\n]+)", text)
    if hashes:
        return [h.strip() for h in hashes]
    numbers = list(re.finditer(rf"(?:\\frac\{{[^{{}}]*\}}\{{[^{{}}]*\}}|{_NUMBER}(?:\s*/\s*\d+)?)", text))
    if not numbers:
        return []
    last = numbers[-1]
    if len(numbers) >= 2:
        before = numbers[-2].group(0)
        gap = ("," if before.endswith(",") else "") + text[numbers[-2].end() : last.start()]
        if "\n" not in gap and _is_alternative(gap):
            return [before.rstrip(",").strip(), last.group(0).strip()]
    return [last.group(0).strip()]


def _is_alternative(gap: str) -> bool:
    gap = gap.strip()
    return gap in (",", ";") or bool(re.fullmatch(r"[,;]?\s*(?:(?:and/)?or|either)(?:\s+(?:maybe|perhaps|possibly))?", gap, re.I))


def extract_final_answer(text: str) -> str | None:
    found = final_answers(text)
    return found[-1] if found else None


def hedges(text: str) -> bool:
    """A response hedges when it states more than one distinct final answer (several \\boxed{} or "answer is"
    lines that differ after normalisation, "… 3 or 4" at the end), or when its final answer offers alternatives
    ("3 \\text{ or } 4", "either 3 or 4")."""
    found = final_answers(text)
    if any(not answers_match(a, found[0]) for a in found[1:]):
        return True
    return bool(found) and bool(_OFFERS_ALTERNATIVES.search(found[-1]))


# ---- normalisation ---------------------------------------------------------------------------------------

_UNIT_WORDS = (
    "units?|cm|mm|km|m|meters?|metres?|inches|inch|feet|foot|ft|miles?|yards?|degrees?|dollars?|cents?|"
    "hours?|minutes?|seconds?|days?|weeks?|years?|grams?|kg|g|pounds?|lbs?|sq|square"
)


def _replace_fracs(text: str) -> str:
    """\\frac{a}{b} (any nesting) and \\frac12 → (a)/(b)."""
    out, i = [], 0
    while i < len(text):
        match = re.match(r"\\[dt]?frac", text[i:])
        if not match:
            out.append(text[i])
            i += 1
            continue
        j = i + match.end()
        while j < len(text) and text[j] == " ":
            j += 1
        numerator = _braced(text, j)
        if numerator is not None:
            num, j = numerator
        elif j < len(text):
            num, j = text[j], j + 1
        else:
            return text
        while j < len(text) and text[j] == " ":
            j += 1
        denominator = _braced(text, j)
        if denominator is not None:
            den, j = denominator
        elif j < len(text):
            den, j = text[j], j + 1
        else:
            return text
        out.append(f"({_replace_fracs(num)})/({_replace_fracs(den)})")
        i = j
    return "".join(out)


def normalize_answer(text: str) -> str:
    s = text.strip().replace("\u2212", "-")  # a unicode minus
    s = s.replace("$", "").replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\ ", "")
    s = re.sub(r"\\left\s*|\\right\s*", "", s)
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{\s*(" + _UNIT_WORDS + r")\s*\}", "", s)
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\^\s*\{?\\circ\}?|\\circ|°", "", s)
    s = s.replace("\\%", "").replace("%", "")
    s = re.sub(r"^\s*[a-zA-Z]\s*=\s*", "", s)  # "x = 5"
    s = re.sub(r"\s+(?:" + _UNIT_WORDS + r")\.?$", "", s)
    s = re.sub(r"^(-?[\d.,/]*\d)\s+[a-zA-Z][a-zA-Z ]*\.?$", r"\1", s)  # "5 apples", "12 square feet"
    s = s.strip().rstrip(".").strip()
    s = _replace_fracs(s)
    s = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", s)  # thousands separators
    s = s.replace(" ", "")
    while len(s) >= 2 and s[0] == "{" and s[-1] == "}" and _braced(s, 0) == (s[1:-1], len(s)):
        s = s[1:-1]
    return s


_SIMPLE = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$")


def _strip_parens(s: str) -> str:
    while len(s) >= 2 and s[0] == "(" and s[-1] == ")" and s[1:-1].count("(") == s[1:-1].count(")"):
        inner = s[1:-1]
        depth = 0
        balanced = True
        for ch in inner:
            depth += ch == "("
            depth -= ch == ")"
            if depth < 0:
                balanced = False
                break
        if not balanced:
            break
        s = inner
    return s


def to_fraction(normalized: str) -> Fraction | None:
    """An exact rational for a number, a decimal, a/b, (a)/(b) or -(a)/(b); None otherwise."""
    s = _strip_parens(normalized)
    sign = 1
    if s.startswith("-") and not _SIMPLE.match(s):
        sign, s = -1, _strip_parens(s[1:])
    if _SIMPLE.match(s):
        return sign * Fraction(s)
    depth = 0
    for i, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "/" and depth == 0:
            num, den = to_fraction(s[:i]), to_fraction(s[i + 1 :])
            if num is None or den is None or den == 0:
                return None
            return sign * num / den
    return None


def answers_match(predicted: str | None, reference: str) -> bool:
    if predicted is None:
        return False
    p, r = normalize_answer(str(predicted)), normalize_answer(str(reference))
    if not p:
        return False
    fp, fr = to_fraction(p), to_fraction(r)
    if fp is not None and fr is not None:
        return fp == fr
    return p == r


def is_correct_response(response: str, reference: str) -> bool:
    """One final answer, equal to the reference: a response that hedges is wrong even if one of its answers is right."""
    return not hedges(response) and answers_match(extract_final_answer(response), reference)


def verdict(response: str, reference: str) -> Verdict:
    if hedges(response):
        return Verdict(False, ("hedged",), "several final answers")
    return Verdict(answers_match(extract_final_answer(response), reference))


# ---- the task ----------------------------------------------------------------------------------------------

# Problem sets shipped in the package (package data), named as `path: packaged:<name>`. basic-math: 67 problems
# written for this project (2026-12-07) — 25 arithmetic word problems, 15 arithmetic expressions, 12 with fractions,
# 15 of simple algebra — each with an exact answer checked by a computation when it was written; all 'test'.
PACKAGED_PREFIX = "packaged:"
PACKAGED = {"basic-math": Path(__file__).with_name("basic_math.jsonl")}


def resolve_path(path: str) -> Path:
    """A JSONL path, or the file of a packaged set (`packaged:basic-math`); an unknown set is refused by name."""
    if path.startswith(PACKAGED_PREFIX):
        name = path.removeprefix(PACKAGED_PREFIX)
        if name not in PACKAGED:
            raise ValueError(f"path: unknown packaged problem set {name!r}; known: "
                             f"{', '.join(PACKAGED_PREFIX + n for n in PACKAGED)}")
        return PACKAGED[name]
    return Path(path)


def load_jsonl(path: str | Path) -> list[Problem]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    problems = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object with 'problem' and 'answer'")
            problem, answer = row.get("problem"), row.get("answer")
            if not isinstance(problem, str) or not problem.strip():
                raise ValueError(f"{where}: field 'problem' must be a non-empty string, got {problem!r}")
            if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or str(answer).strip() == "":
                raise ValueError(f"{where}: field 'answer' must be a non-empty string or a number, got {answer!r}")
            split = row.get("split", "test")
            if not isinstance(split, str):
                raise ValueError(f"{where}: field 'split' must be a string, got {split!r}")
            problems.append(Problem(problem_id=str(row.get("id", number)), question=problem.strip(),
                                    answer=str(answer).strip(), metadata={"split": split}))
    if not problems:
        raise ValueError(f"path: {str(path)!r} holds no problems")
    return problems


class BoxedAnswerChecker:
    """r̂ of a maths response against problem.answer: the final answer the checker reads (the last \\boxed{}, else
    "answer is", "####", the last number), hedging refused and flagged. The chat form of every maths task."""

    def final_answer(self, problem: Problem, response: str) -> str | None:
        found = extract_final_answer(response)
        return None if found is None else normalize_answer(found)

    def verify(self, problem: Problem, response: str) -> Verdict:
        return verdict(response, problem.answer)

    def is_correct(self, problem: Problem, response: str) -> bool:
        return is_correct_response(response, problem.answer)


@dataclass
class MathJsonlTask(BoxedAnswerChecker, QuestionAnswerFormat):
    path: str = ""
    name: str = "math_jsonl"
    instruction: str = INSTRUCTION
    chat_instruction: str = INSTRUCTION
    _problems: list[Problem] = field(default_factory=list, repr=False)

    def __post_init__(self):
        if not self.path:
            raise ValueError("path: the math_jsonl task needs the JSONL file's path (or packaged:basic-math)")
        self._problems = load_jsonl(resolve_path(self.path))

    def problems(self, split: str = "test", count: int | None = None) -> list[Problem]:
        """The file's problems whose 'split' field (default 'test') is `split`, in file order."""
        chosen = [p for p in self._problems if p.metadata["split"] == split]
        if not chosen:
            raise ValueError(f"split: no problem in {self.path!r} has split {split!r}")
        return chosen if count is None else chosen[:count]

    def chat_question(self, problem: Problem) -> str:
        return f"{problem.question}\n{ANSWER_FORMAT}"

    @property
    def chat_checker(self) -> BoxedAnswerChecker:
        return self  # raw and chat responses are judged alike
