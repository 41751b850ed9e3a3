"""The same benchmark as ``overhead.py``'s raw row, on OpenVINO instead of PyTorch.

optimum-intel (the OpenVINO exporter and runtime for transformers models) needs an older
transformers than mmdemo's, so this runs in its own virtual environment:

    python -m venv /tmp/ov && /tmp/ov/bin/pip install "optimum-intel[openvino]==2.2.0" "transformers==4.57.6"
    /tmp/ov/bin/optimum-cli export openvino --task image-text-to-text --weight-format fp16 CHECKPOINT OUT
    /tmp/ov/bin/python bench/openvino_compare.py OUT

CHECKPOINT: e.g. the random-weight SmolVLM2-256M that ``overhead.py`` builds (written by transformers 5,
whose tokenizer_config.json names ``TokenizersBackend``: set ``"tokenizer_class": "PreTrainedTokenizerFast"``
for transformers 4). Same prompt as ``overhead.py``: one 640×480 image as one 512 px tile plus a question,
greedy, 64 new tokens; prints time to first token (p50) and decode tokens/s.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import IMAGE, QUESTION, Clock
from optimum.intel import OVModelForVisualCausalLM
from PIL import Image
from transformers import AutoProcessor, StoppingCriteriaList


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="folder written by optimum-cli export openvino")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    started = time.perf_counter()
    model = OVModelForVisualCausalLM.from_pretrained(args.model)
    processor = AutoProcessor.from_pretrained(args.model)
    print(f"loaded and compiled in {time.perf_counter() - started:.1f} s")
    image = Image.open(IMAGE).convert("RGB")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    results = []
    for run in range(args.runs + 1):  # the first run warms up
        started = time.perf_counter()
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(text=[prompt], images=[image], return_tensors="pt", do_image_splitting=False,
                           size={"longest_edge": 512})
        clock = Clock()
        model.generate(**inputs, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False,
                       stopping_criteria=StoppingCriteriaList([clock]))
        if run:
            results.append((clock.times[0] - started, (len(clock.times) - 1) / (clock.times[-1] - clock.times[0])))
    print(f"prompt tokens: {inputs['input_ids'].shape[1]}, {args.tokens} new tokens, {args.runs} runs")
    print("| runtime | TTFT p50 | decode tok/s |\n|---|---|---|")
    print(f"| OpenVINO | {statistics.median(t for t, _ in results) * 1000:.0f} ms | "
          f"{statistics.median(s for _, s in results):.1f} |")


if __name__ == "__main__":
    main()
