"""SCoRe tasks and verifiers: the synthetic addition task, the MATH-style answer checker and JSONL loader,
HumanEval's problems and prompts (no Ray; the sandboxed scoring is in test_score_sandbox.py)."""

from __future__ import annotations

import json
import random

import pytest

from armillary.algorithms.score.tasks import Verdict, build_task, correctness
from armillary.algorithms.score.tasks import arithmetic
from armillary.algorithms.score.tasks.base import correctness
from armillary.algorithms.score.tasks.arithmetic import ArithmeticTask
from armillary.algorithms.score.tasks.math_answers import (MathJsonlTask, answers_match, extract_final_answer,
                                                           hedges, is_correct_response, last_boxed, load_jsonl, verdict)

# ---- arithmetic --------------------------------------------------------------------------------------------


def test_worked_solution_on_a_hand_example():
    assert arithmetic.solve(347, 586) == "7+6+0=13;4+8+1=13;3+5+1=09;#933"
    assert arithmetic.solve(999, 1) == "9+1+0=10;9+0+1=10;9+0+1=10;#1000"
    assert arithmetic.solve(5, 3) == "5+3+0=08;#8"


def test_every_reference_solution_is_correct_and_wrong_ones_are_not():
    task = ArithmeticTask(min_digits=1, max_digits=6)
    rng = random.Random(0)
    for problem in task.problems("train", 300):
        reference = task.reference_solution(problem)
        assert task.is_correct(problem, reference)
        for kind in arithmetic.ERROR_KINDS:
            wrong = arithmetic.wrong_solution(problem.metadata["a"], problem.metadata["b"], rng, kind=kind)
            assert not task.is_correct(problem, wrong), (problem.question, kind, wrong)


def test_a_wrong_solution_differs_in_exactly_one_step_and_follows_from_it():
    steps_right = arithmetic.solve(4821, 3695).split(";")
    steps_wrong = arithmetic.wrong_solution(4821, 3695, random.Random(1)).split(";")
    first_bad = next(i for i, (a, b) in enumerate(zip(steps_right, steps_wrong)) if a != b)
    # Every step of the wrong solution is internally consistent except the first bad one.
    for i, step in enumerate(steps_wrong[:-1]):
        lhs, total = step.split("=")
        x, y, c = map(int, lhs.split("+"))
        assert (x + y + c == int(total)) == (i != first_bad)


def test_splits_are_disjoint_seeded_and_reproducible():
    task = ArithmeticTask(min_digits=2, max_digits=3, seed=7)
    train, test = task.problems("train", 400), task.problems("test", 100)
    assert not {p.question for p in train} & {p.question for p in test}
    assert task.problems("test", 100) == test
    assert ArithmeticTask(min_digits=2, max_digits=3, seed=8).problems("test", 100) != test
    assert all(arithmetic.split_of(p.question) == "test" for p in test)


def test_final_answer_and_verifier():
    task = ArithmeticTask()
    problem = task.problems("test", 1)[0]
    assert task.final_answer(problem, "junk") is None
    assert not task.is_correct(problem, "")
    assert task.final_answer(problem, "1+1+0=02;#0002") == "2"
    assert task.is_correct(problem, f"whatever;#{problem.answer}")


def test_two_turn_prompts():
    task = ArithmeticTask()
    problem = task.problems("train", 1)[0]
    first = task.first_turn_prompt(problem)
    assert first == f"Q: {problem.question}\nA: "
    second = task.second_turn_prompt(problem, "1+2+0=03;#3\n")
    assert second == f"{first}1+2+0=03;#3\n{arithmetic.INSTRUCTION}\nA: "


def test_arithmetic_task_names_bad_fields():
    with pytest.raises(ValueError, match="max_digits"):
        ArithmeticTask(min_digits=4, max_digits=3)
    with pytest.raises(ValueError, match="split"):
        ArithmeticTask().problems("dev", 3)
    with pytest.raises(ValueError, match="count"):
        ArithmeticTask(min_digits=1, max_digits=1).problems("train", 1000)
    with pytest.raises(ValueError, match="task"):
        build_task("chess")


# ---- MATH-style answers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("response, reference", [
    ("so the answer is \\boxed{42}.", "42"),
    ("\\boxed{\\frac{1}{2}}", "0.5"),
    ("\\boxed{\\dfrac{3}{4}}", "3/4"),
    ("\\boxed{\\tfrac34}", "\\frac{3}{4}"),
    ("$\\boxed{-\\frac{2}{6}}$", "-1/3"),
    ("\\boxed{\\frac{-1}{3}}", "-\\frac13"),
    ("\\boxed{1,000}", "1000"),
    ("\\boxed{1,234,567.50}", "1234567.5"),
    ("\\boxed{\\left( 3 \\right)}", "3"),
    ("\\boxed{5 \\text{ cm}}", "5"),
    ("\\boxed{12\\text{ dollars}}", "12"),
    ("The final answer is $7$.", "7"),
    ("#### 18", "18"),
    ("First 3, then 4, so we get 12.", "12"),
    ("\\boxed{x = 5}", "5"),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
    ("\\boxed{30^\\circ}", "30"),
    ("\\boxed{2.50}", "5/2"),
    ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),
    ("The answer is 5 apples.", "5"),
    ("\\boxed{\u22123}", "-3"),
    ("\\boxed{50\\%}", "50"),
])
def test_equivalent_answers_match(response, reference):
    assert is_correct_response(response, reference)


@pytest.mark.parametrize("response, reference", [
    ("\\boxed{41}", "42"),
    ("\\boxed{\\frac{1}{3}}", "0.33"),
    ("\\boxed{-5}", "5"),
    ("no number here", "1"),
    ("\\boxed{}", "0"),
    ("\\boxed{\\frac{1}{0}}", "1"),
    ("\\boxed{\\sqrt{2}}", "\\sqrt{3}"),
])
def test_different_answers_do_not_match(response, reference):
    assert not is_correct_response(response, reference)


def test_boxed_takes_the_last_and_handles_nested_braces():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{a}{b^{2}}}") == "\\frac{a}{b^{2}}"
    assert last_boxed("\\boxed 7") == "7"
    assert last_boxed("\\boxed{unbalanced") is None
    assert extract_final_answer("\\boxed{{2}}") == "{2}"
    assert answers_match("{2}", "2")


# Each response offers the right answer (4) among others: hedging must not earn reward.
HEDGES = [
    "\\boxed{3} or \\boxed{4}",
    "It is \\boxed{4}. Or maybe \\boxed{3}.",
    "\\boxed{3 \\text{ or } 4}",
    "\\boxed{3 \\quad 4}",
    "\\boxed{\\text{either } 3 \\text{ or } 4}",
    "The answer is 3.\nThe answer is 4.",
    "The final answer is 3 or 4.",
    "#### 3\n#### 4",
    "So it is 3 or 4",
    "It must be 3, or 4",
    "either 3 or 4",
    "3 and/or 4",
    "It could be 3, 4",  # no stated answer, and the last number comes as one of a list
]


@pytest.mark.parametrize("response", HEDGES)
def test_hedging_earns_no_reward_and_is_flagged(response):
    assert hedges(response)
    assert not is_correct_response(response, "4")
    assert verdict(response, "4") == Verdict(False, ("hedged",), "several final answers")


@pytest.mark.parametrize("response", ["\\boxed{3, 4}", "\\boxed{\\{3, 4\\}}", "The answer is (3, 4)."])
def test_a_stated_list_is_one_answer_right_only_when_the_reference_is_that_list(response):
    assert not is_correct_response(response, "4")
    assert not hedges(response)
    assert is_correct_response(response, extract_final_answer(response))


@pytest.mark.parametrize("response", [
    "\\boxed{4}, and checking again: \\boxed{4}",  # the same answer twice
    "\\boxed{0.5}, that is \\boxed{\\frac{1}{2}}",  # the same value twice
    "First 3, then 1 more, so we get 4.",  # numbers on the way to one answer
    "The answer is 4",
])
def test_one_answer_stated_more_than_once_is_not_a_hedge(response):
    assert not hedges(response)
    assert verdict(response, "4" if "0.5" not in response else "1/2").passed


def test_jsonl_loader_and_task(tmp_path):
    path = tmp_path / "maths.jsonl"
    rows = [{"problem": "1/2 + 1/4?", "answer": "\\frac34"}, {"problem": "2+2?", "answer": 4, "split": "train"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    task = build_task("math_jsonl", path=str(path))
    test = task.problems("test")
    assert [p.answer for p in test] == ["\\frac34"]
    assert task.problems("train")[0].answer == "4"
    assert correctness(task, test, ["we get \\boxed{0.75}"]) == [True]
    assert task.final_answer(test[0], "\\boxed{\\frac{3}{4}}") == "(3)/(4)"
    assert isinstance(task, MathJsonlTask)


@pytest.mark.parametrize("line, field", [
    ('{"answer": "1"}', "problem"),
    ('{"problem": "x", "answer": null}', "answer"),
    ('{"problem": "x", "answer": true}', "answer"),
    ('{"problem": "", "answer": "1"}', "problem"),
    ('not json', "not valid JSON"),
    ('[1, 2]', "JSON object"),
])
def test_jsonl_errors_name_the_line_and_field(tmp_path, line, field):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"problem": "ok", "answer": "1"}\n' + line + "\n")
    with pytest.raises(ValueError, match=f"bad.jsonl:2.*{field}|bad.jsonl:2: {field}"):
        load_jsonl(path)


def test_jsonl_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        load_jsonl(tmp_path / "none.jsonl")


# ---- HumanEval -------------------------------------------------------------------------------------------------


def test_humaneval_problems_ship_with_the_package():
    task = build_task("humaneval")
    problems = task.problems("test")
    assert len(problems) == 164
    first = problems[0]
    assert first.problem_id == "HumanEval/0" and "def has_close_elements" in first.question
    second = task.second_turn_prompt(first, "    return True\n")
    assert second.startswith(first.question) and task.instruction in second and second.endswith(first.question)
    assert task.final_answer(first, "    return True\n\n") == "    return True"


def test_a_misread_digit_changes_one_operand_digit_and_the_rest_follows_from_it():
    right = [tuple(map(int, step.split("=")[0].split("+"))) for step in arithmetic.solve(4821, 3695).split(";")[:-1]]
    for seed in range(20):
        steps = arithmetic.wrong_solution(4821, 3695, random.Random(seed), kind="digit").split(";")[:-1]
        parsed = [(tuple(map(int, s.split("=")[0].split("+"))), int(s.split("=")[1])) for s in steps]
        # Every step's sum is right for what it read, each carry is the previous step's tens digit …
        assert all(x + y + c == total for (x, y, c), total in parsed)
        assert [c for (_, _, c), _ in parsed] == [0] + [total // 10 for _, total in parsed[:-1]]
        # … and exactly one operand digit differs from the question's.
        misread = [(i, j) for i, ((x, y, _), (rx, ry, _)) in enumerate(zip([p[0] for p in parsed], right))
                   for j, (u, v) in enumerate(((x, rx), (y, ry))) if u != v]
        assert len(misread) == 1
    with pytest.raises(ValueError, match="kind"):
        arithmetic.wrong_solution(12, 34, random.Random(0), kind="carry")
