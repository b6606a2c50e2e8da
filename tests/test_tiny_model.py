"""The committed default model "tiny": files, tokenizer, exact chat template, and greedy behaviour.

Behaviour tests assert structure (stops, valid tool-call JSON), never exact generated text.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from wirecheck.reference_server.models import TINY_MODEL_DIR
from wirecheck.reference_server.models.tiny_template import CHAT_TEMPLATE

MAX_NEW = 48

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

TOOLS_BLOCK = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"name": "get_weather", "description": "Get the current weather for a city.", "parameters": '
    '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}\n</tools>\n\n'
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n"
    '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
)


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(TINY_MODEL_DIR)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(TINY_MODEL_DIR).eval()


def render(tok, messages, tools=None, add_generation_prompt=False) -> str:
    return tok.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt)


def generate(tok, model, messages, tools=None) -> list[int]:
    prompt = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, return_dict=True,
                                     return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=MAX_NEW, do_sample=False)
    return out[0, prompt["input_ids"].shape[1]:].tolist()


# --- files and config -------------------------------------------------------------------------------------


def test_directory_is_complete_and_small():
    names = {p.name for p in TINY_MODEL_DIR.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja"} <= names
    assert sum(p.stat().st_size for p in TINY_MODEL_DIR.iterdir()) < 1_000_000


def test_architecture(model):
    config = model.config
    assert config.model_type == "llama"
    assert config.hidden_size // config.num_attention_heads >= 32
    assert getattr(config, "head_dim", 32) >= 32
    assert config.max_position_embeddings == 2048
    assert model.dtype == torch.float32


def test_special_tokens(tok):
    ids = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    assert ids == [0, 1, 2]
    assert (tok.bos_token, tok.pad_token, tok.eos_token) == ("<|endoftext|>", "<|endoftext|>", "<|im_end|>")
    eos = GenerationConfig.from_pretrained(TINY_MODEL_DIR).eos_token_id
    assert tok.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])


def test_tool_call_markers_are_single_visible_tokens(tok):
    for marker in ("<tool_call>", "</tool_call>"):
        ids = tok.encode(marker, add_special_tokens=False)
        assert len(ids) == 1
        assert tok.decode(ids, skip_special_tokens=True) == marker


ROUND_TRIP = ["héllo wörld", "日本語 テキスト", "emoji 🚀🙂 ok", "\x00\x7f tab\t", "Ωmega ∑ €",
              "  two  spaces\n\nand lines  "]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_byte_level_round_trip(tok, text):
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text


# --- chat template ----------------------------------------------------------------------------------------


def test_committed_template_is_the_recipes(tok):
    assert tok.chat_template == CHAT_TEMPLATE
    assert (TINY_MODEL_DIR / "chat_template.jinja").read_text(encoding="utf-8") == CHAT_TEMPLATE


def test_template_plain_roles(tok):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "Echo: a b"},
    ]
    assert render(tok, messages, add_generation_prompt=True) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHello<|im_end|>\n"
        "<|im_start|>assistant\nHi!<|im_end|>\n"
        "<|im_start|>user\nEcho: a b<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render(tok, messages[:2]) == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"


def test_template_tools_calls_and_responses(tok):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo and Zürich?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich"}}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temperature": 12}'},
        {"role": "tool", "tool_call_id": "c2", "content": "9 C"},
        {"role": "assistant", "content": "Cool in both."},
    ]
    assert render(tok, messages, tools=[WEATHER_TOOL]) == (
        "<|im_start|>system\nBe brief.\n\n" + TOOLS_BLOCK
        + "<|im_start|>user\nWeather in Oslo and Zürich?<|im_end|>\n"
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\n"
        '{"temperature": 12}\n</tool_response>\n<tool_response>\n9 C\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\nCool in both.<|im_end|>\n"
    )


def test_template_tools_without_system_and_text_before_call(tok):
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Checking.",
         "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {}}}]},
        {"role": "tool", "content": "sunny"},
    ]
    assert render(tok, messages, tools=[WEATHER_TOOL], add_generation_prompt=True) == (
        "<|im_start|>system\n" + TOOLS_BLOCK
        + "<|im_start|>user\nWeather?<|im_end|>\n"
        '<|im_start|>assistant\nChecking.\n<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>'
        "<|im_end|>\n<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("message, body", [
    ({"role": "user", "content": None}, ""),
    ({"role": "user", "content": ""}, ""),
    ({"role": "user"}, ""),
    ({"role": "user", "content": [{"type": "text", "text": "Echo: "}, {"type": "text", "text": "x y"}]}, "Echo: x y"),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}},
                                  {"type": "text", "text": "hi"}]}, "hi"),
    ({"role": "assistant", "content": None}, None),
])
def test_template_content_shapes(tok, message, body):
    rendered = render(tok, [message])
    role = message["role"]
    assert rendered == f"<|im_start|>{role}\n{body or ''}<|im_end|>\n"


def test_empty_tools_list_means_no_tools(tok):
    messages = [{"role": "user", "content": "Hi"}]
    assert render(tok, messages, tools=[]) == render(tok, messages)


# --- greedy behaviour -------------------------------------------------------------------------------------


def test_echo_stops_with_im_end(tok, model):
    new = generate(tok, model, [{"role": "user", "content": "Echo: hello brave world"}])
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert im_end in new and new[-1] == im_end
    assert len(new) < MAX_NEW
    assert tok.decode(new[:-1]).strip()  # said something before stopping


def test_weather_prompt_calls_the_tool(tok, model):
    new = generate(tok, model, [{"role": "user", "content": "What is the weather in Paris?"}], tools=[WEATHER_TOOL])
    text = tok.decode(new)
    match = re.search(r"<tool_call>\n(.*?)\n</tool_call>", text, re.S)
    assert match, text
    call = json.loads(match.group(1))
    assert call["name"] == "get_weather"
    assert isinstance(call["arguments"], dict) and call["arguments"]
    assert text.endswith("<|im_end|>")
    parsed = tok.parse_response(text, prefix="")  # the response_template in tokenizer_config.json agrees
    assert parsed["tool_calls"][0]["function"]["name"] == "get_weather"


def test_tool_result_gets_a_plain_answer(tok, model):
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "tool_calls": [{"type": "function",
                                              "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": '{"temperature": 12, "unit": "celsius", "condition": "rainy"}'},
    ]
    new = generate(tok, model, messages, tools=[WEATHER_TOOL])
    text = tok.decode(new)
    assert text.endswith("<|im_end|>") and "<tool_call>" not in text


@pytest.mark.parametrize("prompt", [
    "Write a detailed essay about the history of the Roman empire.",
    "qwertz uiop asdf ghjk",
    "¿Dónde está la biblioteca? 📚",
    "Please list every prime number below one thousand, separated by commas.",
])
def test_out_of_distribution_prompts_stop(tok, model, prompt):
    new = generate(tok, model, [{"role": "user", "content": prompt}])
    assert len(new) < MAX_NEW
    assert new[-1] in (tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>"))
