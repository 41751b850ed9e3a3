"""Task prompts, label parsing, box parsing and drawing, sentence splitting: the pure parts of the tasks."""

import json

import pytest
from PIL import Image

from mmdemo.engines.speech import split_sentences
from mmdemo.errors import UserError
from mmdemo.grounding import Box, draw_boxes, export_json, parse_boxes, to_image
from mmdemo.tasks import FIELDS, TASKS, match_label, parse_labels
from mmdemo.turns import Turn, kinds_in
from mmdemo.ui.history import to_turns


def test_compose_fills_the_prompt_and_appends_the_users_text():
    assert TASKS["chat"].compose("Hi there") == "Hi there"
    assert TASKS["caption_short"].compose("") == TASKS["caption_short"].prompt
    text = TASKS["classify"].compose("Great film!", values={"labels": "positive, negative"})
    assert text.startswith("Classify the input into exactly one of these labels: positive, negative.")
    assert text.endswith("\n\nGreat film!")
    assert "into French." in TASKS["translate"].compose("", values={"language": "French"})
    assert "into English." in TASKS["translate"].compose("")  # a field left out takes its default
    grounding = TASKS["grounding"].compose("red car")
    assert grounding.startswith("Locate every red car in the image") and '"bbox_2d"' in grounding
    assert TASKS["grounding"].compose("", values={"target": "tree"}).startswith("Locate every tree")


def test_compose_refuses_too_few_labels_and_keeps_other_braces():
    with pytest.raises(UserError, match="at least two labels"):
        TASKS["classify"].compose("x", values={"labels": "only"})
    assert TASKS["chat"].compose("x", 'Answer as {"json": true}.') == 'Answer as {"json": true}.\n\nx'  # as written


def test_labels_are_parsed_in_order_without_repeats():
    assert parse_labels(" positive, Neutral ,,negative\npositive ") == ["positive", "Neutral", "negative"]
    assert match_label("I think it is Negative, not positive.", ["positive", "negative"]) == "negative"
    assert match_label("no idea", ["positive", "negative"]) is None


def test_every_field_a_task_declares_exists_and_fills_a_blank_of_its_prompt():
    for task in TASKS.values():
        for name in task.fields:
            assert name in FIELDS and "{" + name + "}" in task.prompt


def test_tasks_that_need_media_say_so(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    assert "needs an image" in TASKS["ocr"].missing([])
    assert "needs an audio clip" in TASKS["transcribe"].missing(kinds_in([Turn.user("", [str(image)])]))
    history = to_turns([{"role": "user", "content": [{"path": str(image)}, "hi"]}])
    assert TASKS["ocr"].missing(kinds_in([*history, Turn.user("what is it?")])) is None  # a follow-up


@pytest.mark.parametrize(("answer", "frame", "expected"), [
    ('```json\n[{"bbox_2d": [10, 20, 110, 220], "label": "cat"}, {"bbox_2d": [5, 5, 6, 6], "label": "dot"}]\n```',
     "pixels", [Box("cat", 10, 20, 110, 220), Box("dot", 5, 5, 6, 6)]),
    ("<|object_ref_start|>dog<|object_ref_end|><|box_start|>(100,200),(500,900)<|box_end|>", "norm1000",
     [Box("dog", 100, 200, 500, 900)]),
    ("The house is at [12, 30, 64.5, 80].", "pixels", [Box("object", 12, 30, 64.5, 80)]),
    ("I cannot see any boxes here.", "pixels", []),
    ('[{"bbox_2d": "not numbers"}]', "pixels", []),
])
def test_boxes_are_parsed_from_the_formats_models_write(answer, frame, expected):
    assert parse_boxes(answer) == (expected, frame)


def test_a_family_that_writes_json_boxes_in_0_to_1000_gets_that_frame():
    # Qwen3-VL / Qwen3.5 write Qwen2.5-VL's JSON, in 0-1000 of the image: on 800x600, [250,250,500,750] is
    # (200,150)-(400,450), not the pixels (250,250)-(500,600)
    boxes, frame = parse_boxes('[{"bbox_2d": [250, 250, 500, 750], "label": "cat"}]', "norm1000")
    assert frame == "norm1000"
    assert to_image(boxes, frame, (800, 600), (800, 600)) == [Box("cat", 200.0, 150.0, 400.0, 450.0)]


def test_boxes_map_to_the_users_image_and_are_clipped():
    # Qwen2.5-VL writes pixels of the image it saw (here 280×140) for a 1000×500 image
    seen = to_image([Box("a", 28, 14, 140, 70)], "pixels", (280, 140), (1000, 500))
    assert seen == [Box("a", 100.0, 50.0, 500.0, 250.0)]
    norm = to_image([Box("b", 500, 0, 1200, 1000), Box("c", 10, 10, 10, 10)], "norm1000", (0, 0), (200, 100))
    assert norm == [Box("b", 100.0, 0.0, 200.0, 100.0)]  # clipped to the image; the empty box dropped


def test_drawn_boxes_and_json_export(tmp_path):
    image = Image.new("RGB", (200, 100), "white")
    boxes = [Box("cat", 20, 30, 120, 90)]
    drawn = draw_boxes(image, boxes)
    assert drawn.size == image.size and image.getpixel((20, 60)) == (255, 255, 255)
    assert drawn.getpixel((20, 60)) != (255, 255, 255)  # the outline is drawn
    assert drawn.getpixel((70, 60)) == (255, 255, 255)  # the inside is not filled
    data = json.loads(export_json(boxes, image.size, tmp_path / "b.json").read_text())
    assert data == {"image_size": {"width": 200, "height": 100},
                    "boxes": [{"label": "cat", "x1": 20, "y1": 30, "x2": 120, "y2": 90}]}


def test_sentences_are_cut_where_they_end():
    assert split_sentences("Hello there. How are") == (["Hello there."], "How are")
    assert split_sentences("Done! Really?\nYes") == (["Done!", "Really?"], "Yes")
    assert split_sentences("你好。今天天气") == (["你好。"], "今天天气")
    assert split_sentences("3.5 apples") == ([], "3.5 apples")  # no space after the dot: not an end
    done, rest = split_sentences("word " * 120)
    assert done and all(len(s) <= 400 for s in done) and len(rest) <= 400
