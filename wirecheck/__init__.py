"""wirecheck: conformance suites, an offline reference server and load profiles for OpenAI- and
Anthropic-compatible LLM endpoints.

Everything installed lives under this one name: ``wirecheck.spec`` (the wire contract), ``wirecheck.suites``
(``pytest --pyargs wirecheck.suites --target=URL``), ``wirecheck.reference_server`` (``wirecheck serve``, with
the ``server`` extra), ``wirecheck.load`` (``wirecheck load``) and ``wirecheck.fixtures`` (the corpora).
"""

__version__ = "0.2.0"
