"""wirecheck conformance suites: `pytest --target=URL` checks any OpenAI-compatible endpoint."""
