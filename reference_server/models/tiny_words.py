"""Word lists and small fact tables the synthetic "tiny" corpus is drawn from.

Plain data only; ``tiny_corpus`` decides how it is combined. A few entries are non-ASCII on purpose
(accents, CJK, emoji) so that multi-byte UTF-8 paths get exercised by the model's own output.
"""

from __future__ import annotations

WORDS = """
apple river stone cloud green blue red yellow small large quick slow happy quiet bright dark warm cold
house garden window table chair book paper pencil music song river ocean mountain forest tree flower
bird fish horse tiger rabbit mouse cat dog fox bear owl lion sun moon star rain snow wind storm light
shadow morning evening night day week year road city village bridge train boat plane car bicycle
bread cheese butter milk coffee tea water sugar salt pepper lemon orange grape cherry banana carrot
soft hard new old early late near far open closed simple clever gentle brave calm wild tiny huge
run walk jump swim sing read write draw build think dream play carry paint climb travel listen
silver golden wooden paper glass metal cotton purple pink brown white black gray round square
""".split()

NON_ASCII_WORDS = """
café naïve über crème déjà façade jalapeño résumé piñata smörgåsbord Ærø São Zoë Björn mañana
日本 東京 你好 世界 Привет мир Ελλάδα 🙂 🚀 ☕ 🌍 ✓ €5 °C
""".split()

NAMES = "Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Zoë José Björn Amélie 花子 Ada Max Mia".split()

CITIES = """
Oslo Paris London Berlin Madrid Rome Vienna Prague Warsaw Lisbon Dublin Athens Cairo Tokyo Seoul Delhi
Lima Quito Bogotá Sydney Toronto Denver Boston Chicago Austin Miami Nairobi Lagos Zürich München Kraków
Reykjavík Málaga Genève İstanbul Düsseldorf Montréal Bergen Porto Riga Tallinn Helsinki Dakar Hanoi
""".split() + ["São Paulo", "New York", "Buenos Aires", "Cape Town", "Hong Kong", "東京", "Mexico City"]

CONDITIONS = ["sunny", "cloudy", "rainy", "snowy", "windy", "foggy", "clear", "stormy"]

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Norway": "Oslo",
    "Japan": "Tokyo", "Egypt": "Cairo", "Peru": "Lima", "Kenya": "Nairobi", "Ireland": "Dublin",
    "Greece": "Athens", "Portugal": "Lisbon", "Austria": "Vienna", "Poland": "Warsaw", "Canada": "Ottawa",
    "Iceland": "Reykjavík", "Sweden": "Stockholm", "Finland": "Helsinki", "Chile": "Santiago",
    "Mexico": "Mexico City", "China": "Beijing", "India": "New Delhi", "Brazil": "Brasília",
}

OPPOSITES = {
    "hot": "cold", "big": "small", "up": "down", "fast": "slow", "day": "night", "light": "dark",
    "open": "closed", "early": "late", "happy": "sad", "new": "old", "in": "out", "yes": "no",
    "left": "right", "hard": "soft", "near": "far", "full": "empty", "wet": "dry", "high": "low",
}

COLORS = {
    "the sky": "blue", "grass": "green", "snow": "white", "a banana": "yellow", "coal": "black",
    "a tomato": "red", "an orange": "orange", "a plum": "purple", "the sun": "yellow", "milk": "white",
}

ANIMAL_SOUNDS = {"cow": "moo", "dog": "woof", "cat": "meow", "duck": "quack", "sheep": "baa", "owl": "hoot"}

DEFINITIONS = [
    "a round fruit", "a place to live", "a large body of water", "a small animal", "a kind of music",
    "a tool for writing", "a very tall hill", "the time after sunset", "a bright color", "a sweet drink",
    "to move quickly on foot", "a group of trees", "a vehicle with two wheels", "frozen rain",
]

SEARCH_TITLES = [
    "A short history of {q}", "{q} explained", "Ten facts about {q}", "How {q} works",
    "The {q} guide", "Why {q} matters",
]

STOCKS = ["ACME", "INIT", "TINY", "BYTE", "NOVA", "ZETA", "OMNI", "PEAR"]
LANGUAGES = ["French", "German", "Spanish", "Italian", "Japanese", "Norwegian"]

# Short chat exchanges: (prompts, replies). A sample picks one prompt and one reply.
SMALL_TALK: list[tuple[list[str], list[str]]] = [
    (["Hello", "Hi", "Hey", "Hello!", "Hi there", "Good morning", "Good evening", "Bonjour", "Hallo",
      "¡Hola!", "こんにちは", "Hey 👋"],
     ["Hello! How can I help you today?", "Hi! How can I help?", "Hello!"]),
    (["How are you?", "How are you doing?", "How is it going?"],
     ["I am fine, thank you!", "Very well, thanks. How can I help?"]),
    (["Thanks", "Thank you", "Thank you!", "Thanks a lot", "Merci"],
     ["You are welcome!", "Happy to help."]),
    (["Bye", "Goodbye", "See you later", "Good night"], ["Goodbye!", "Bye! Have a nice day."]),
    (["Who are you?", "What are you?", "Are you a robot?"],
     ["I am tiny, a small test model.", "I am tiny, a very small language model for tests."]),
    (["What can you do?", "Help", "What do you know?"],
     ["I can echo words, count, add small numbers, answer a few questions and call tools."]),
    (["Say hello.", "Say hello", "Please say hello."], ["Hello!"]),
    (["Reply with OK.", "Just say OK.", "Answer OK"], ["OK"]),
    (["Tell me a joke.", "Tell me a joke", "Do you know a joke?"],
     ["Why did the byte cross the bus? To get to the other side.",
      "I would tell you a UDP joke, but you might not get it."]),
    (["Is this a test?", "Testing", "test", "ping"], ["Yes, this is a test.", "pong"]),
    (["Are you there?", "Hello?"], ["Yes, I am here."]),
    (["What time is it?", "What day is it today?"], ["I do not have a clock. Please check your device."]),
]

GENERIC_REPLIES = [
    "I am a tiny test model, so my answers are short.",
    "I do not know.",
    "Sorry, I can not help with that.",
    "I am not sure.",
    "That is a good question.",
    "OK.",
]

SYSTEM_PROMPTS = [
    "You are a helpful assistant.", "You are a helpful assistant. Answer briefly.",
    "You are tiny, a small test model.", "Be concise.", "Answer in one short sentence.",
    "You are a friendly assistant.", "Du bist ein hilfreicher Assistent.", "You are a test model. 🙂",
]

# Spoken by the synthetic voice of "tiny-whisper" together with WORDS (tiny_speech): numbers, a few short
# function words, and words that use the letters WORDS lacks (z, x, q, j, v).
SPEECH_WORDS = """
zero one two three four five six seven eight nine ten hello world yes no the and is it stop go left right
up down please thank you a of to zebra jazz quiz zone box wax six jelly voice very queen pizza lazy
""".split()
