"""kws: an always-on keyword-spotting toolchain for microcontrollers.

Stages (one subpackage each): data, features, train, evaluate, compile, bench.
Nothing heavy is imported here: `import kws` must stay fast for the CLI.
"""

__version__ = "0.1.0"
