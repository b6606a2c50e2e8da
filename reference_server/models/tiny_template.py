"""Chat template and special tokens of the embedded "tiny" model.

The template is ChatML with the Hermes / Qwen2.5 tool-call conventions, so that other servers can serve
the same directory unchanged (e.g. vLLM with ``--tool-call-parser hermes``) and parse the same calls:

* every turn is ``<|im_start|>{role}\\n{content}<|im_end|>\\n``; no default system prompt;
* ``tools`` go into the system turn, one JSON function signature per line inside ``<tools>\\n...\\n</tools>``;
* an assistant tool call is ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``, one block per
  call, each preceded by a newline (so a call-only turn starts ``<|im_start|>assistant\\n<tool_call>``);
* ``tool`` messages become a *user* turn of ``<tool_response>`` blocks; consecutive ones share that turn.

Jinja note: transformers compiles templates with ``trim_blocks`` and ``lstrip_blocks``, and ``{%- ... %}``
eats a preceding literal newline, so every newline we want is emitted from a string expression (``'\\n'``)
and all tags strip their surroundings. ``tests/test_tiny_model.py`` pins the exact rendered strings.
"""

from __future__ import annotations

BOS_TOKEN = "<|endoftext|>"  # also the pad token, and the end of a plain-text document
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"  # end of a chat turn: the eos token of chat generation
SPECIAL_TOKENS = [BOS_TOKEN, IM_START, IM_END]  # ids 0, 1, 2

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
# Added but *not* special: a client that skips special tokens must still see the markup of a tool call.
TOOL_CALL_TOKENS = [TOOL_CALL_OPEN, TOOL_CALL_CLOSE]

ASSISTANT_PREFIX = f"{IM_START}assistant\n"

# Raw string: the "\n" escapes below are Jinja string escapes, not Python ones.
CHAT_TEMPLATE = r"""{#- ChatML + Hermes/Qwen2.5 tool calls. Content: string, null, absent or a list of text parts. -#}
{%- macro render_text(content) -%}
    {%- if content is not defined or content is none -%}
    {%- elif content is string -%}
        {{- content -}}
    {%- elif content is iterable and content is not mapping -%}
        {%- for part in content -%}
            {%- if part is mapping and part.type == 'text' -%}
                {{- part.text -}}
            {%- elif part is string -%}
                {{- part -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro -%}
{%- if tools -%}
    {{- '<|im_start|>system\n' -}}
    {%- if messages and messages[0].role == 'system' -%}
        {%- set system_text = render_text(messages[0].content) -%}
        {%- if system_text -%}
            {{- system_text + '\n\n' -}}
        {%- endif -%}
    {%- endif -%}
    {{- '# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' -}}
    {{- 'You are provided with function signatures within <tools></tools> XML tags:\n<tools>' -}}
    {%- for tool in tools -%}
        {{- '\n' -}}
        {%- if tool.function is defined -%}
            {{- tool.function | tojson -}}
        {%- else -%}
            {{- tool | tojson -}}
        {%- endif -%}
    {%- endfor -%}
    {{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments ' -}}
    {{- 'within <tool_call></tool_call> XML tags:\n' -}}
    {{- '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
    {%- if message.role == 'system' -%}
        {%- if not (loop.first and tools) -%}
            {{- '<|im_start|>system\n' + render_text(message.content) + '<|im_end|>\n' -}}
        {%- endif -%}
    {%- elif message.role == 'assistant' -%}
        {%- set text = render_text(message.content) -%}
        {{- '<|im_start|>assistant' -}}
        {%- if text or not message.tool_calls -%}
            {{- '\n' + text -}}
        {%- endif -%}
        {%- if message.tool_calls -%}
            {%- for tool_call in message.tool_calls -%}
                {%- set call = tool_call.function if tool_call.function is defined else tool_call -%}
                {{- '\n<tool_call>\n{"name": ' + (call.name | tojson) + ', "arguments": ' -}}
                {%- if call.arguments is string -%}
                    {{- call.arguments -}}
                {%- elif call.arguments is defined and call.arguments is not none -%}
                    {{- call.arguments | tojson -}}
                {%- else -%}
                    {{- '{}' -}}
                {%- endif -%}
                {{- '}\n</tool_call>' -}}
            {%- endfor -%}
        {%- endif -%}
        {{- '<|im_end|>\n' -}}
    {%- elif message.role == 'tool' -%}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' -%}
            {{- '<|im_start|>user' -}}
        {%- endif -%}
        {{- '\n<tool_response>\n' + render_text(message.content) + '\n</tool_response>' -}}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' -%}
            {{- '<|im_end|>\n' -}}
        {%- endif -%}
    {%- else -%}
        {{- '<|im_start|>' + message.role + '\n' + render_text(message.content) + '<|im_end|>\n' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
"""

# transformers' response parser (``tokenizer.parse_response``; also read by ``transformers serve``): the same
# markup as the template, so any consumer of tokenizer_config.json can split text from tool calls.
RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": ASSISTANT_PREFIX,
    "fields": {
        "tool_calls": {
            "open": TOOL_CALL_OPEN,
            "close": TOOL_CALL_CLOSE,
            "repeats": True,
            "content": "json",
            "transform": {"type": "function", "function": "{content}"},
        },
        "content": {"close": [IM_END, BOS_TOKEN], "content": "text"},
    },
}
