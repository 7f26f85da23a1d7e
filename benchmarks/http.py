"""HTTP benchmark: is imhook fast enough never to cost the IM its 2 s callback budget?

    python benchmarks/http.py [--smoke] [--strict] [--markdown FILE] [--help for the rest]

The benchmark itself is benchmarks/httpbench.py (see its docstring and benchmarks/README.md). This
file is only its entry point, and it shares its name with the standard library's `http` package:
a script run from this directory (python benchmarks/words.py) has this directory first on
sys.path, so its `import http.client` (or Flask's, or requests') finds this file. When that
happens, this module loads the standard library's package and steps aside for it.
"""

import os
import sys


def _stand_in_for_the_standard_library() -> None:
    import importlib.util

    directory = os.path.join(os.path.dirname(os.__file__), "http")
    spec = importlib.util.spec_from_file_location("http", os.path.join(directory, "__init__.py"),
                                                  submodule_search_locations=[directory])
    module = importlib.util.module_from_spec(spec)
    sys.modules["http"] = module  # the import system hands out what sys.modules holds at the end
    spec.loader.exec_module(module)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    # Off the front of the path, so the benchmark's own imports find the standard library's http.
    sys.path[:] = [os.path.dirname(here)] + [p for p in sys.path if os.path.abspath(p or ".") != here] + [here]
    from httpbench import main

    sys.exit(main())
elif __name__ == "http":
    _stand_in_for_the_standard_library()
