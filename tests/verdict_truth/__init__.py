"""Verdict truth: what the suites report against real servers nobody here wrote, pinned in manifests.

Each manifest names a third-party target, how it is started, and for every suite run the exact set of checks
that must fail there, each with the wire fact that makes the failure true (what the target sent, and what
api.openai.com / api.anthropic.com or the official SDK does instead). A check that newly fails on such a target,
or stops failing, breaks the build: either the target changed or a verdict did. docs/verdict-truth.md says how
failures are classified and how to add a target.
"""
