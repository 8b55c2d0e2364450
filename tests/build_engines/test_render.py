"""Filling `config.pbtxt` templates: every `${name}` gets its value, written as pbtxt reads it;
a placeholder without a value, or a value without a placeholder, is refused with both named."""

from __future__ import annotations

import pytest

from build_engines.render import TemplateError, parameters_block, render, render_template

TEMPLATE = 'name: "${model_name}"\nmax_batch_size: ${max_batch_size}\n'


def refusal(template: str, values: dict[str, object]) -> str:
    with pytest.raises(TemplateError) as refused:
        render(template, values)
    return str(refused.value)


# What is refused


def test_a_placeholder_without_a_value_is_refused_by_name() -> None:
    assert refusal(TEMPLATE, {"model_name": "bls"}) == (
        "template placeholders without values: ['max_batch_size']; values without placeholders: []"
    )


def test_a_value_without_a_placeholder_is_refused_by_name() -> None:
    values = {"model_name": "bls", "max_batch_size": 8, "decoupled": True}

    assert refusal(TEMPLATE, values) == (
        "template placeholders without values: []; values without placeholders: ['decoupled']"
    )


def test_a_renamed_key_is_refused_under_both_its_names_each_list_sorted() -> None:
    values = {"model_name": "bls", "max_batch": 8, "a_stray": 1}

    assert refusal(TEMPLATE + "${instance_count}", values) == (
        "template placeholders without values: ['instance_count', 'max_batch_size']; "
        "values without placeholders: ['a_stray', 'max_batch']"
    )


def test_a_shipped_template_given_too_few_values_is_refused() -> None:
    with pytest.raises(TemplateError, match=r"without values: \[.*'max_batch_size'"):
        render_template("ensemble", {"model_name": "ensemble"})


@pytest.mark.parametrize("placeholder", ["${maxBatchSize}", "${max-batch-size}"])
def test_nothing_that_looks_like_a_placeholder_is_left_unfilled(placeholder: str) -> None:
    with pytest.raises(TemplateError):
        render(TEMPLATE + placeholder, {"model_name": "bls", "max_batch_size": 8})


# The normal fill


def test_every_placeholder_is_filled_with_its_value() -> None:
    assert render(TEMPLATE, {"model_name": "bls", "max_batch_size": 64}) == (
        'name: "bls"\nmax_batch_size: 64\n'
    )


def test_a_placeholder_used_twice_is_filled_twice_from_one_value() -> None:
    assert render("${n} and ${n}", {"n": 3}) == "3 and 3"


def test_booleans_are_written_as_pbtxt_spells_them() -> None:
    assert render("${a} ${b}", {"a": True, "b": False}) == "true false"


def test_a_value_is_written_once_as_it_is_not_read_again_for_placeholders() -> None:
    assert render("${a}", {"a": "${b} $ {}"}) == "${b} $ {}"


def test_a_template_without_placeholders_takes_no_values() -> None:
    assert render('backend: "python"\n', {}) == 'backend: "python"\n'


def test_string_parameters_are_quoted_and_escaped_one_per_line() -> None:
    block = parameters_block({"tokenizer_dir": 'C:\\tok "x"', "streaming": True, "beams": 1})

    assert block.splitlines() == [
        'parameters: { key: "tokenizer_dir" value: { string_value: "C:\\\\tok \\"x\\"" } }',
        'parameters: { key: "streaming" value: { string_value: "true" } }',
        'parameters: { key: "beams" value: { string_value: "1" } }',
    ]
