"""The one compiled part of skylift: observing's invoker observer in C
(src/skylift/observe/_collect*.c). Optional: without a C compiler (or Python's headers)
the install goes on, and skylift uses the same work in Python (observe/collect.py)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "skylift.observe._collect",
            ["src/skylift/observe/_collect.c", "src/skylift/observe/_collect_rows.c"],
            depends=["src/skylift/observe/_collect.h"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
