"""Reasoning before the answer: found in the chat template, switched per request, streamed apart from the answer
(never its marks), counted apart, folded on the page, returned apart by the API. End to end on the Qwen3.5 twin
trained here to think before it answers."""

import threading

import pytest
import torch
from tiny_extras import train_answer
from tiny_realish import REALISH

from mmdemo.chat import ChatService, Request
from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.engines.local import TransformersEngine
from mmdemo.engines.streaming import BatchingStreamer, specials_except
from mmdemo.engines.thinking import CLOSE, OPEN, Splitter, ThinkingFormat, detect
from mmdemo.modalities import Budget
from mmdemo.models import ModelManager
from mmdemo.runner import start
from mmdemo.settings import DEFAULT_SYSTEM_PROMPT
from mmdemo.tasks import TASKS
from mmdemo.turns import Turn
from mmdemo.ui.answer import LiveAnswer
from mmdemo.ui.turn import api_result

QUESTION = Turn.user("What colour is the sky?")
REASONING, ANSWER = "The user asks about the sky. It is blue.", "The sky is blue."
GEMMA = ThinkingFormat("<|channel>", "<channel|>", "<|channel>thought", True)
QWEN = ThinkingFormat("<think>", "</think>", "<think>", True)


def split(deltas, thinking=False):
    splitter = Splitter(thinking)
    pieces = [piece for delta in deltas for piece in splitter.feed(delta)] + list(splitter.end())
    return ["".join(text for kind, text in pieces if kind == want) for want in ("thinking", "text")]


def test_reasoning_is_split_from_the_answer_even_when_a_mark_is_cut_across_deltas():
    assert split([OPEN, "\nLet me", " think.\n</th", "ink>\n\nBlue", "."]) == ["Let me think.\n", "Blue."]
    assert split(["Just the answer <b>."]) == ["", "Just the answer <b>."]
    assert split(["still reasoning when the limit came"], thinking=True) == ["still reasoning when the limit came", ""]


def test_gemmas_channel_marks_become_the_canonical_ones():
    deltas = ["<|chan", "nel>thou", "ght\nI reason", " here.<chan", "nel|>The ", "answer."]
    assert "".join(GEMMA.canonical(deltas)) == f"{OPEN}\nI reason here.{CLOSE}The answer."
    assert split(GEMMA.canonical(deltas)) == ["I reason here.", "The answer."]


def test_the_format_and_its_switch_are_read_from_the_template():
    qwen = (REALISH / "qwen3.5-0.8b" / "chat_template.jinja").read_text()
    gemma = (REALISH / "gemma-4-e2b-it" / "chat_template.jinja").read_text()
    vl = (REALISH / "qwen3-vl-2b-instruct" / "chat_template.jinja").read_text()
    assert detect(qwen, lambda t: t in ("<think>", "</think>")) == QWEN
    assert detect(gemma, lambda t: t in ("<|channel>", "<channel|>")) == GEMMA
    assert detect(vl, lambda t: t in ("<think>", "</think>")) is None  # Qwen3-VL Instruct does not think
    assert GEMMA.opened_by("<|turn>model\n<|channel>thought\n")
    assert not QWEN.opened_by("<think>\n\n</think>\n\n") and QWEN.opened_by("assistant\n<think>\n")


def test_a_special_mark_is_written_out_and_the_other_special_tokens_are_not(twins):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(twins["qwen3.5-0.8b"])
    streamer = BatchingStreamer(tokenizer, 0.0, specials_except(tokenizer, ("<|vision_start|>",)))
    streamer.next_tokens_are_prompt = False
    for token in tokenizer("<|vision_start|>Hi there.<|im_end|>", add_special_tokens=False)["input_ids"]:
        streamer.put(torch.tensor([token]))
    streamer.end()
    assert "".join(streamer) == "<|vision_start|>Hi there."


@pytest.fixture(scope="module")
def thinker(twins, tmp_path_factory):
    """The Qwen3.5 twin trained to reason, then answer, when its template's thinking is on."""
    out = tmp_path_factory.mktemp("thinking")
    train_answer(out, twins["qwen3.5-0.8b"], QUESTION, f"{REASONING}\n</think>\n\n{ANSWER}", think=True,
                 lr=1e-2)  # 29 steps instead of 78 (a step of Qwen3.5's reference kernels takes 0.35 s here)
    engine = TransformersEngine(str(out), "cpu")
    return ChatService(ModelManager(engine), Budget(), 64)


def ask(service, think, task="chat"):
    request = Request(QUESTION, task=TASKS[task], params=GenerationParams(40, 0.0, think=think),
                      system=DEFAULT_SYSTEM_PROMPT)
    handle = start(service, request)
    return list(handle), handle.stats


def test_a_thinking_model_streams_its_reasoning_apart_and_counts_it_apart(thinker):
    assert thinker.models.engine.capabilities.thinking
    events, stats = ask(thinker, think=True)
    thinking = "".join(e.text for e in events if e.kind == "thinking")
    answer = "".join(e.text for e in events if e.kind == "text")
    assert thinking.strip() == REASONING and answer == ANSWER
    assert "think>" not in answer + thinking
    assert 0 < stats.thinking_tokens < stats.generated_tokens and stats.thinking_s >= stats.first_token_s
    assert api_result("chat", QUESTION.text, events)[1] == {"task": "chat", "prompt": QUESTION.text,
                                                            "answer": ANSWER, "thinking": REASONING}


def test_the_chat_api_streams_the_answer_with_the_reasoning_beside_it(thinker):
    from mmdemo.extras import Extras
    from mmdemo.settings import Settings
    from mmdemo.ui.api import ApiHandlers

    api = ApiHandlers(thinker, Settings(), Extras(), None)
    updates = list(api.chat({"text": QUESTION.text, "files": []}, [], DEFAULT_SYSTEM_PROMPT, 40, 0, 1, True))
    answer, details, history = updates[-1]
    assert answer == ANSWER and details == {"thinking": REASONING}  # the reasoning apart, as the page shows it
    assert history[-1] == {"role": "assistant", "content": ANSWER}  # later turns get the answer alone
    assert all(not update[0] or ANSWER.startswith(update[0]) for update in updates)  # never a mark in the answer


def test_thinking_off_gives_the_answer_alone_and_the_template_closes_the_block(thinker):
    events, stats = ask(thinker, think=False)
    assert not [e for e in events if e.kind == "thinking"] and stats.thinking_tokens == 0
    engine = thinker.models.engine
    prompt = engine._processor.tokenizer.decode(engine._prepare([{"role": "user", "content": [
        {"type": "text", "text": "Hi"}]}])["input_ids"][0])
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_a_template_that_thinks_by_default_is_asked_not_to_unless_the_user_wants_it(twins):
    """Qwen3.5-35B-A3B's published template opens <think> unless enable_thinking is false: labels and plain
    answers must not be scored or written inside an opened reasoning block."""
    from transformers import AutoProcessor

    from mmdemo.engines.inputs import InputBuilder

    processor = AutoProcessor.from_pretrained(twins["qwen3.5-0.8b"])
    processor.chat_template = (REALISH / "qwen3.5-35b-a3b" / "chat_template.jinja").read_text()
    builder = InputBuilder(processor, 256, None)
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    off, on = (processor.tokenizer.decode(builder.build(messages, None, "cpu", think)["input_ids"][0])
               for think in (False, True))
    assert off.endswith("<think>\n\n</think>\n\n") and on.endswith("<think>\n")
    assert not builder.opens_reasoning(builder.build(messages, None, "cpu")["input_ids"])


def test_labels_are_scored_after_a_closed_reasoning_block(thinker):
    result = thinker.classify(Request(QUESTION, task=TASKS["classify"], labels=("blue", "green")), threading.Event())
    assert result.label in ("blue", "green") and sum(result.probabilities.values()) == pytest.approx(1.0)


def test_the_page_folds_the_reasoning_once_the_answer_starts():
    stats = GenerationStats(generated_tokens=30, thinking_tokens=20, first_token_s=0.5, thinking_s=2.5)
    shown: list[dict] = []
    live = LiveAnswer(shown, stats, 0.0, "en")
    live.add("thinking", "Let me think.\n")
    assert shown[0]["metadata"] == {"title": "Thinking…", "status": "pending"} and len(shown) == 2  # + speed strip
    live.add("text", "Blue.")
    live.refresh(done=True)
    thought, answer, strip = shown
    assert thought["content"] == "Let me think." and thought["metadata"]["title"] == "Thought for 2.0 s"
    assert thought["metadata"]["status"] == "done" and answer == {"role": "assistant", "content": "Blue."}
    assert "20 thinking + 10 answer tokens" in strip["metadata"]["title"]


def test_a_servers_separate_reasoning_is_marked_like_a_local_models():
    """vLLM's and SGLang's reasoning parsers send the reasoning in ``reasoning_content`` deltas."""
    from mmdemo.engines.remote import _marked

    chunks, reasoning, stream = [("Let me", None), (" think.", None), (None, "Blue"), (None, ".")], False, []
    for thought, content in chunks:
        text, reasoning = _marked(thought, content, reasoning)
        stream.append(text)
    assert stream == [f"{OPEN}Let me", " think.", f"{CLOSE}Blue", "."]
    assert split(stream) == ["Let me think.", "Blue."]
    assert _marked("Hmm.", "Done.", False) == (f"{OPEN}Hmm.{CLOSE}Done.", False)
