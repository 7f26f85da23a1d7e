"""Builds the word engine's optional C kernel and search; the metadata lives in pyproject.toml.

``optional=True``: without a compiler the install still succeeds and rules.text.words runs
its pure-Python path (same results, slower; see docs/performance.md).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("rules.text._wordkernel", ["rules/text/_wordkernel.c"],
                             extra_compile_args=["-O2"], optional=True),
                   Extension("rules.text._wordsearch", ["rules/text/_wordsearch.c"],
                             extra_compile_args=["-O2"], optional=True)])
