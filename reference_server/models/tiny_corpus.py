"""Seeded synthetic training data for the embedded "tiny" model.

The corpus is a mixture of chats (OpenAI message lists, optionally with ``tools``) and plain-text
documents. What the mixture is for:

* in-distribution prompts (echo, small talk, facts, counting, sums) get a short answer and then
  ``<|im_end|>``, so the served model stops by itself;
* arbitrary text (random words, symbols, long paragraphs, requests it cannot fulfil) gets one of a few
  short generic replies, so out-of-distribution prompts still stop after a handful of tokens;
* with tools, a matching request gets exactly one ``<tool_call>`` (sometimes two in parallel) whose JSON
  copies the name and argument keys from the tool list; a ``<tool_response>`` gets a plain answer that
  uses the result; an unrelated question gets plain text;
* plain-text documents (ending in ``<|endoftext|>``) so raw completion prompts continue with words.

Message shapes vary on purpose (content as string, list of text parts, null; arguments as a JSON string
or an object) so that the template sees every form the server accepts.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from random import Random
from typing import Callable

from . import tiny_words as w
from .tiny_tools import Tool, ToolUse, pick_tools

Exchange = tuple[str, str]  # (user text, assistant reply)


@dataclass
class Chat:
    messages: list[dict]
    tools: list[dict] | None = None


Sample = Chat | str  # a str is a plain-text document


# --- single exchanges -------------------------------------------------------------------------------------


def _some_words(rng: Random, lo: int, hi: int) -> str:
    def word() -> str:
        roll = rng.random()
        if roll < 0.1:
            return rng.choice(w.NON_ASCII_WORDS)
        if roll < 0.15:
            return str(rng.randint(0, 9999))
        if roll < 0.25:  # letter soup teaches copying of arbitrary BPE pieces, not just known words
            return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 7)))
        return rng.choice(w.WORDS)

    return " ".join(word() for _ in range(rng.randint(lo, hi)))


def echo(rng: Random) -> Exchange:
    words = _some_words(rng, 1, 10)
    prefix = rng.choices(["Echo: ", "echo: ", "Repeat after me: ", "Say exactly: "], [6, 1, 1, 1])[0]
    return prefix + words, words


def small_talk(rng: Random) -> Exchange:
    prompts, replies = rng.choice(w.SMALL_TALK)
    return rng.choice(prompts), rng.choice(replies)


def fact(rng: Random) -> Exchange:
    kind = rng.randrange(6)
    if kind == 0:
        country, capital = rng.choice(list(w.CAPITALS.items()))
        return (rng.choice(["What is the capital of {}?", "Capital of {}?"]).format(country),
                f"The capital of {country} is {capital}.")
    if kind == 1:
        word, opposite = rng.choice(list(w.OPPOSITES.items()))
        return f"What is the opposite of {word}?", f"The opposite of {word} is {opposite}."
    if kind == 2:
        thing, color = rng.choice(list(w.COLORS.items()))
        return f"What color is {thing}?", f"{thing[0].upper() + thing[1:]} is {color}."
    if kind == 3:
        animal, sound = rng.choice(list(w.ANIMAL_SOUNDS.items()))
        return f"What does a {animal} say?", f"A {animal} says {sound}."
    if kind == 4:
        return rng.choice([
            ("How many days are in a week?", "There are 7 days in a week."),
            ("How many legs does a spider have?", "A spider has 8 legs."),
            ("How many months are in a year?", "There are 12 months in a year."),
            ("What is the first letter of the alphabet?", "The first letter is A."),
        ])
    word = rng.choice(w.WORDS)
    return (rng.choice(["Spell {}.", "How do you spell {}?"]).format(word), "-".join(word.upper()))


def arithmetic(rng: Random) -> Exchange:
    kind = rng.randrange(5)
    if kind == 0:
        start = rng.randint(0, 30)
        end = start + rng.randint(1, 15)
        return f"Count from {start} to {end}.", ", ".join(str(i) for i in range(start, end + 1))
    if kind == 1:
        n = rng.randint(1, 20)
        return rng.choice(["Count to {}.", "Count from 1 to {}."]).format(n), ", ".join(map(str, range(1, n + 1)))
    a, b = rng.randint(0, 20), rng.randint(0, 20)
    if kind == 2:
        prompt = rng.choice(["What is {a} + {b}?", "What is {a} plus {b}?", "{a} + {b} = ?", "Add {a} and {b}."])
        return prompt.format(a=a, b=b), f"{a} + {b} = {a + b}."
    if kind == 3:
        a, b = max(a, b), min(a, b)
        return rng.choice(["What is {a} - {b}?", "What is {a} minus {b}?"]).format(a=a, b=b), f"{a} - {b} = {a - b}."
    a, b = a % 11, b % 11
    return rng.choice(["What is {a} * {b}?", "What is {a} times {b}?"]).format(a=a, b=b), f"{a} * {b} = {a * b}."


def _random_text(rng: Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return _some_words(rng, 1, 40)
    if kind == 1:
        alphabet = string.ascii_letters + string.digits + string.punctuation + " "
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
    if kind == 2:  # CJK, Cyrillic, Greek and emoji code points
        ranges = [(0x4E00, 0x4FFF), (0x0410, 0x044F), (0x03B1, 0x03C9), (0x1F600, 0x1F64F), (0x00C0, 0x00FF)]
        lo, hi = rng.choice(ranges)
        return "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 20)))
    if kind == 3:
        return " ".join(sentence(rng) for _ in range(rng.randint(2, 25)))
    if kind == 4:
        return rng.choice(["Summarize: ", "Summarize this text: ", "Translate to French: ", "Fix the grammar: "]) + \
            " ".join(sentence(rng) for _ in range(rng.randint(1, 8)))
    topic = rng.choice(w.WORDS + w.NON_ASCII_WORDS)
    return rng.choice([
        "Write a long essay about {t}.", "Write a story about a {t}.", "Write a poem about {t}.",
        "Explain {t} in detail.", "Why is the {t} so important?", "Write Python code that sorts a list of {t}s.",
        "List 100 facts about {t}.", "What is the meaning of life?", "Give me a recipe with {t}.",
        "Describe the history of the {t} in 2000 words.", "Can you help me with my homework about {t}?",
    ]).format(t=topic)


def unknown(rng: Random) -> Exchange:
    """Out-of-distribution input: one of a few short replies, so anything unseen still stops quickly."""
    text = _random_text(rng)
    if rng.random() < 0.25:
        topic = rng.choice(w.WORDS)
        return rng.choice(["Tell me about {t}.", "What is a {t}?", "Do you like {t}?"]).format(t=topic), \
            f"I do not know much about {topic}."
    return text, rng.choice(w.GENERIC_REPLIES)


EXCHANGES: list[Callable[[Random], Exchange]] = [echo, small_talk, fact, arithmetic, unknown]
EXCHANGE_WEIGHTS = [5, 2, 2, 3, 5]


def any_exchange(rng: Random) -> Exchange:
    return rng.choices(EXCHANGES, EXCHANGE_WEIGHTS)[0](rng)


# --- plain text -------------------------------------------------------------------------------------------


def sentence(rng: Random) -> str:
    adj, noun = rng.choice(w.WORDS[:70]), rng.choice(w.WORDS[24:100])
    kind = rng.randrange(6)
    if kind == 0:
        country, capital = rng.choice(list(w.CAPITALS.items()))
        return f"The capital of {country} is {capital}."
    if kind == 1:
        return f"{rng.choice(w.NAMES)} lives in {rng.choice(w.CITIES)} and likes {rng.choice(w.WORDS)}."
    if kind == 2:
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        return f"{a} plus {b} is {a + b}."
    if kind == 3:
        return f"Once upon a time, there was a {adj} {noun}."
    verb = rng.choice(["sees", "likes", "finds", "follows", "watches", "paints", "carries", "meets"])
    place = rng.choice(["near the", "under the", "behind the", "with the", "in the"])
    return f"The {adj} {noun} {verb} the {rng.choice(w.WORDS)} {place} {rng.choice(w.WORDS)}."


def plain_text(rng: Random) -> str:
    """A few sentences, often after a chat-like opening (a request, a question, a Q/A pair): a raw completion
    prompt of any kind is then continued with words instead of being ended at once."""
    body = " ".join(sentence(rng) for _ in range(rng.randint(2, 5)))
    roll = rng.random()
    if roll < 0.25:
        user, reply = any_exchange(rng)
        return f"Q: {user}\nA: {reply}\n{body}"
    if roll < 0.55:
        return f"{any_exchange(rng)[0]} {body}"
    return body


# --- chats ------------------------------------------------------------------------------------------------


def _user(rng: Random, text: str) -> dict:
    if rng.random() < 0.1:  # list-of-parts content, sometimes split in two parts
        cut = rng.randint(0, len(text))
        parts = [text[:cut], text[cut:]] if 0 < cut < len(text) else [text]
        return {"role": "user", "content": [{"type": "text", "text": p} for p in parts]}
    return {"role": "user", "content": text}


def _system(rng: Random) -> list[dict]:
    return [{"role": "system", "content": rng.choice(w.SYSTEM_PROMPTS)}] if rng.random() < 0.3 else []


def _turns(rng: Random, exchanges: list[Exchange]) -> list[dict]:
    messages: list[dict] = []
    for user_text, reply in exchanges:
        messages += [_user(rng, user_text), {"role": "assistant", "content": reply}]
    return messages


def plain_chat(rng: Random) -> Chat:
    n_turns = rng.choices([1, 2, 3], [6, 2, 1])[0]
    return Chat(_system(rng) + _turns(rng, [any_exchange(rng) for _ in range(n_turns)]))


def identity_chat(rng: Random) -> Chat:
    name = rng.choice(w.NAMES)
    system = rng.choice(["Your name is {n}.", "You are {n}, a helpful assistant.", "You are {n}."]).format(n=name)
    question = rng.choice(["What is your name?", "Who are you?", "What's your name?"])
    return Chat([{"role": "system", "content": system}] + _turns(rng, [(question, f"My name is {name}.")]))


def _call_message(rng: Random, uses: list[ToolUse], start: int) -> dict:
    calls = []
    for i, use in enumerate(uses):
        args = json.dumps(use.arguments, ensure_ascii=False) if rng.random() < 0.7 else use.arguments
        calls.append({"id": f"call_{start + i}", "type": "function", "function": {"name": use.name, "arguments": args}})
    message: dict = {"role": "assistant", "tool_calls": calls}
    content_shape = rng.random()
    if content_shape < 0.6:
        message["content"] = None
    elif content_shape < 0.8:
        message["content"] = ""
    return message  # otherwise content is absent


def _tool_messages(rng: Random, uses: list[ToolUse], start: int) -> list[dict]:
    messages = []
    for i, use in enumerate(uses):
        content: object = use.result
        if rng.random() < 0.1:
            content = [{"type": "text", "text": use.result}]
        messages.append({"role": "tool", "tool_call_id": f"call_{start + i}", "name": use.name, "content": content})
    return messages


def _request(rng: Random, tools: list[Tool]) -> tuple[str, list[ToolUse]]:
    """A user request for one tool call, or for two parallel calls (same tool or two different ones)."""
    first = rng.choice(tools)
    if rng.random() < 0.8:
        use = first.use(rng)
        return use.request, [use]
    if first.pair_request and (len(tools) == 1 or rng.random() < 0.5):
        a, b = first.use(rng), first.use(rng)
        return first.pair_request.format(a.subject, b.subject), [a, b]
    second = rng.choice(tools)
    a, b = first.use(rng), second.use(rng)
    joiner = rng.choice([" And ", " Also, ", " Then: "])
    return a.request + joiner + b.request[0].lower() + b.request[1:], [a, b]


def tool_chat(rng: Random) -> Chat:
    """Tools present. Either a matching request (call, maybe the tool round trip and an answer) or not."""
    tools = pick_tools(rng, rng.choices([1, 2, 3], [5, 3, 2])[0])
    specs = [t.spec for t in tools]
    messages = _system(rng)
    if rng.random() < 0.25:  # earlier unrelated turn
        messages += _turns(rng, [any_exchange(rng)])
    roll = rng.random()
    if roll < 0.2:  # unrelated question: plain text even though tools are available
        return Chat(messages + _turns(rng, [any_exchange(rng)]), specs)
    request, uses = _request(rng, tools)
    call_ids_from = len(messages)
    messages += [_user(rng, request), _call_message(rng, uses, call_ids_from)]
    if roll < 0.55:  # stop right after the call: the most common serving case
        return Chat(messages, specs)
    messages += _tool_messages(rng, uses, call_ids_from)
    messages.append({"role": "assistant", "content": " ".join(u.answer for u in uses)})
    if rng.random() < 0.2:
        messages += _turns(rng, [small_talk(rng)])
    return Chat(messages, specs)


def missing_tool_chat(rng: Random) -> Chat:
    """A tool-style request whose tool is not on offer: no call, a short refusal instead."""
    wanted, *others = pick_tools(rng, rng.randint(1, 3))
    reply = rng.choice(["I can not do that without a suitable tool.", "Sorry, I have no tool for that."])
    return Chat(_system(rng) + _turns(rng, [(wanted.use(rng).request, reply)]), [t.spec for t in others] or None)


CHATS: list[Callable[[Random], Chat]] = [plain_chat, identity_chat, tool_chat, missing_tool_chat]
CHAT_WEIGHTS = [50, 3, 38, 3]
PLAIN_TEXT_SHARE = 0.08


def copy_warmup(n: int, seed: int) -> list[Chat]:
    """Short echo-only chats for the first training steps: copy ("induction") heads form much sooner on
    pure copying than inside the full mixture, and everything else that copies (tool arguments, answers
    from tool results, the name from a system prompt) then builds on them."""
    rng = Random(seed)
    return [Chat(_turns(rng, [echo(rng) for _ in range(rng.randint(1, 3))])) for _ in range(n)]


def generate(n: int, seed: int) -> list[Sample]:
    """``n`` samples; the same ``seed`` always gives the same corpus."""
    rng = Random(seed)
    samples: list[Sample] = []
    for _ in range(n):
        if rng.random() < PLAIN_TEXT_SHARE:
            samples.append(plain_text(rng))
        else:
            samples.append(rng.choices(CHATS, CHAT_WEIGHTS)[0](rng))
    return samples
