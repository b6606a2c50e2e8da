"""Synthetic tools for the "tiny" corpus: OpenAI-style tool specs plus matching requests and results.

Every family comes in several spellings (function name, parameter names, descriptions) so that the model
learns to *copy* the name and argument keys from the ``<tools>`` block instead of memorising one schema;
that is what lets it call tools defined by someone else's test fixtures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from random import Random
from typing import Callable

from . import tiny_words as w


@dataclass(frozen=True)
class ToolUse:
    """One call of a tool: what the user asked, the call, the tool's reply and the final answer."""

    request: str
    name: str
    arguments: dict
    result: str
    answer: str
    subject: str  # the thing asked about (a city, a word...), for phrasing two calls in one request


@dataclass(frozen=True)
class Tool:
    family: str
    spec: dict  # one entry of the OpenAI ``tools`` list
    use: Callable[[Random], ToolUse]
    pair_request: str | None = None  # e.g. "What is the weather in {0} and {1}?"


_PREFIXES = ["get_", "fetch_", "check_", "query_", "lookup_", "my_", "tool_", "api_", ""]
_SUFFIXES = ["_v2", "_now", "_tool", "_info", "_api", "_fn", "_service"]


def _name(rng: Random, common: list[str], topics: list[str]) -> str:
    """Half the time a common spelling, else a made-up one: the name cannot be guessed from the request,
    so the model has to copy it from the tool list (as it must for anybody else's tools)."""
    roll = rng.random()
    if roll < 0.5:
        return rng.choice(common)
    made_up = rng.choice(_PREFIXES) + rng.choice(topics)
    return made_up + rng.choice(_SUFFIXES) if roll < 0.8 else made_up


def _opaque_name(rng: Random) -> str:
    """A name that says nothing about the tool (``tool_qx``, ``zebra7``)."""
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 6)))
    return rng.choice(["tool_", "fn_", "", "do_"]) + letters + rng.choice(["", str(rng.randint(0, 99))])


def _spec(name: str, description: str, params: dict[str, dict], required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": params, "required": required},
        },
    }


def _as_result(rng: Random, data: dict, text: str) -> str:
    # Tools answer in JSON or in plain text; the model has to read both.
    return json.dumps(data, ensure_ascii=False) if rng.random() < 0.7 else text


def weather_tool(rng: Random, name: str | None = None) -> Tool:
    name = name or _name(rng, ["get_weather", "get_current_weather", "weather", "lookup_weather"],
                         ["weather", "current_weather", "forecast", "weather_report"])
    key = rng.choice(["city", "location"])
    has_unit = rng.random() < 0.4
    params = {key: {"type": "string", "description": rng.choice(["City name", "The city, e.g. Paris"])}}
    if has_unit:
        params["unit"] = {"type": "string", "enum": ["celsius", "fahrenheit"]}
    desc = rng.choice(["Get the current weather for a city.", "Get the current weather in a given location."])

    def use(r: Random) -> ToolUse:
        city = r.choice(w.CITIES)
        request = r.choice([
            "What is the weather in {c}?", "What's the weather like in {c}?", "Weather in {c}?",
            "How is the weather in {c} today?", "Is it raining in {c}?", "Tell me the weather for {c}.",
            "weather {c}", "Check the weather in {c}, please.",
        ]).format(c=city)
        args: dict = {key: city}
        unit, sym = "celsius", "°C"
        if has_unit and r.random() < 0.4:
            unit, sym = "fahrenheit", "°F"
            request = request.rstrip("?.") + " in fahrenheit?"
            args["unit"] = unit
        temp, cond = r.randint(-10, 35) if unit == "celsius" else r.randint(14, 95), r.choice(w.CONDITIONS)
        result = _as_result(r, {"temperature": temp, "unit": unit, "condition": cond}, f"{temp}{sym}, {cond}")
        answer = r.choice(["It is {t}{s} and {c} in {city}.", "In {city} it is {c} and {t}{s}."])
        return ToolUse(request, name, args, result, answer.format(t=temp, s=sym, c=cond, city=city), city)

    return Tool("weather", _spec(name, desc, params, [key]), use, "What is the weather in {0} and {1}?")


def add_tool(rng: Random, name: str | None = None) -> Tool:
    name = name or _name(rng, ["add", "add_numbers", "sum_numbers", "calculator_add"],
                         ["add", "sum", "plus", "addition"])
    a_key, b_key = rng.choice([("a", "b"), ("x", "y"), ("first", "second")])
    kind = rng.choice(["integer", "number"])
    params = {a_key: {"type": kind}, b_key: {"type": kind}}
    desc = rng.choice(["Add two numbers.", "Return the sum of two numbers."])

    def use(r: Random) -> ToolUse:
        a, b = r.randint(0, 999), r.randint(0, 999)
        request = r.choice([
            "What is {a} plus {b}?", "Add {a} and {b}.", "What is {a} + {b}?", "Please add {a} and {b}.",
            "Use the tool to add {a} and {b}.", "Sum of {a} and {b}?",
        ]).format(a=a, b=b)
        result = _as_result(r, {"result": a + b}, str(a + b))
        answer = r.choice(["{a} + {b} = {s}.", "The sum is {s}."]).format(a=a, b=b, s=a + b)
        return ToolUse(request, name, {a_key: a, b_key: b}, result, answer, f"{a} and {b}")

    return Tool("add", _spec(name, desc, params, [a_key, b_key]), use)


def lookup_tool(rng: Random, name: str | None = None) -> Tool:
    name = name or _name(rng, ["lookup_word", "define_word", "dictionary_lookup", "define"],
                         ["definition", "word", "meaning", "dictionary"])
    key = rng.choice(["word", "term"])
    desc = rng.choice(["Look up the meaning of a word.", "Get the dictionary definition of a word."])

    def use(r: Random) -> ToolUse:
        word = r.choice(w.WORDS if r.random() < 0.9 else w.NON_ASCII_WORDS)
        request = r.choice([
            "Define {x}.", "What does {x} mean?", "Look up the word {x}.", "What is the meaning of {x}?",
            "Definition of {x}?",
        ]).format(x=word)
        meaning = r.choice(w.DEFINITIONS)
        result = _as_result(r, {"word": word, "definition": meaning}, meaning)
        answer = r.choice(["{x} means {d}.", "{x}: {d}."]).format(x=word, d=meaning)
        return ToolUse(request, name, {key: word}, result, answer, word)

    return Tool("lookup", _spec(name, desc, {key: {"type": "string"}}, [key]), use,
                "What do {0} and {1} mean?")


def time_tool(rng: Random, name: str | None = None) -> Tool:
    name = name or _name(rng, ["get_time", "get_current_time", "world_clock"], ["time", "local_time", "clock"])
    key = rng.choice(["city", "location"])
    desc = rng.choice(["Get the current local time in a city.", "Current time for a location."])

    def use(r: Random) -> ToolUse:
        city = r.choice(w.CITIES)
        request = r.choice(["What time is it in {c}?", "Current time in {c}?", "What is the time in {c}?"])
        clock = f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}"
        result = _as_result(r, {"time": clock}, clock)
        return ToolUse(request.format(c=city), name, {key: city}, result, f"It is {clock} in {city}.", city)

    return Tool("time", _spec(name, desc, {key: {"type": "string"}}, [key]), use,
                "What time is it in {0} and in {1}?")


def search_tool(rng: Random, name: str | None = None) -> Tool:
    name = name or _name(rng, ["search", "web_search", "search_web"], ["search", "web", "internet_search"])
    key = rng.choice(["query", "q"])
    desc = rng.choice(["Search the web.", "Search the internet for a query."])

    def use(r: Random) -> ToolUse:
        query = " ".join(r.choice(w.WORDS) for _ in range(r.randint(1, 3)))
        request = r.choice(["Search the web for {q}.", "Search for {q}.", "Find information about {q}.",
                            "Look up {q} online."]).format(q=query)
        title = r.choice(w.SEARCH_TITLES).format(q=query)
        result = _as_result(r, {"results": [{"title": title}]}, title)
        return ToolUse(request, name, {key: query}, result, f"The top result is: {title}.", query)

    return Tool("search", _spec(name, desc, {key: {"type": "string"}}, [key]), use)


def stock_tool(rng: Random, name: str | None = None) -> Tool:
    name = name or _name(rng, ["get_stock_price", "stock_price", "get_quote"], ["stock", "quote", "share_price"])
    key = rng.choice(["symbol", "ticker"])
    desc = rng.choice(["Get the latest stock price.", "Look up a stock quote by ticker symbol."])

    def use(r: Random) -> ToolUse:
        sym = r.choice(w.STOCKS)
        request = r.choice(["What is the stock price of {s}?", "Price of {s}?", "How much is {s} stock?",
                            "Get a quote for {s}."]).format(s=sym)
        price = f"{r.randint(1, 500)}.{r.randint(0, 99):02d}"
        result = _as_result(r, {"symbol": sym, "price": float(price), "currency": "USD"}, f"{price} USD")
        return ToolUse(request, name, {key: sym}, result, f"{sym} trades at {price} USD.", sym)

    return Tool("stock", _spec(name, desc, {key: {"type": "string"}}, [key]), use,
                "What are the stock prices of {0} and {1}?")


def translate_tool(rng: Random, name: str | None = None) -> Tool:
    name = name or _name(rng, ["translate", "translate_text"], ["translation", "translate", "translator"])
    text_key, lang_key = rng.choice([("text", "target_language"), ("text", "language")])
    params = {text_key: {"type": "string"}, lang_key: {"type": "string"}}
    desc = rng.choice(["Translate text into another language.", "Translate a text."])

    def use(r: Random) -> ToolUse:
        text = " ".join(r.choice(w.WORDS) for _ in range(r.randint(1, 3)))
        lang = r.choice(w.LANGUAGES)
        request = r.choice(["Translate '{t}' to {l}.", "How do you say {t} in {l}?",
                            "Translate {t} into {l}."]).format(t=text, l=lang)
        translated = " ".join(r.choice(w.WORDS + w.NON_ASCII_WORDS) for _ in range(len(text.split())))
        result = _as_result(r, {"translation": translated}, translated)
        answer = f"In {lang}, '{text}' is '{translated}'."
        return ToolUse(request, name, {text_key: text, lang_key: lang}, result, answer, text)

    return Tool("translate", _spec(name, desc, params, [text_key, lang_key]), use)


FAMILIES: list[Callable[..., Tool]] = [
    weather_tool, add_tool, lookup_tool, time_tool, search_tool, stock_tool, translate_tool,
]
# Weather is what client developers (and our tests) try first, so it gets drawn more often.
FAMILY_WEIGHTS = [4, 2, 2, 1, 1, 1, 1]


def pick_tools(rng: Random, k: int) -> list[Tool]:
    """``k`` tools of distinct families, in random order."""
    chosen: list[Callable[..., Tool]] = []
    while len(chosen) < k:
        family = rng.choices(FAMILIES, FAMILY_WEIGHTS)[0]
        if family not in chosen:
            chosen.append(family)
    if k == 1 and rng.random() < 0.15:  # alone, a tool can be recognised without a telling name
        return [chosen[0](rng, _opaque_name(rng))]
    return [family(rng) for family in chosen]
