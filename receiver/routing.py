"""URL matching for the Flask app: werkzeug's, less the reference cycle it leaves per request.

werkzeug's `StateMachineMatcher.match` defines a recursive closure on every call: the inner
function holds the cells it reads and one of those cells holds the function, so each request leaves
a cycle of 8 objects that only the garbage collector frees. In a worker that cycle is the only
cyclic garbage a callback makes (tests/test_routing.py counts it), and it is what sets the young
collections going: each one walks every object allocated since the last, the recording's queued
records included (benchmarks/RESULTS.md, issue 16, step 11).

`StaticFirstMatcher` finds a path made of static parts only (every callback path, /healthz,
/metrics, /readyz) with a loop over werkzeug's own state machine, taking exactly the branch
werkzeug's depth-first search tries first (static transitions before dynamic ones) and the same
rule it would return there. Anything else (a path with converters, a method no rule at that path
allows, a missing or extra slash, an alias) goes to werkzeug's own `match`, unchanged: redirects,
405s and 404s are werkzeug's.
"""

from __future__ import annotations

from typing import Any

from werkzeug._internal import _wsgi_decoding_dance
from werkzeug.routing import Map, MapAdapter
from werkzeug.routing.matcher import StateMachineMatcher


class StaticFirstMatcher(StateMachineMatcher):
    """werkzeug's matcher with a loop, not a recursive closure, for all-static paths (see above)."""

    def match(self, domain: str, path: str, method: str, websocket: bool) -> tuple[Any, dict[str, Any]]:
        state = self._root.static.get(domain)
        if state is not None:
            for part in path.split("/"):
                state = state.static.get(part)
                if state is None:
                    break
            else:
                # werkzeug's base case: the first rule at the end of the path that takes this method
                # and this kind of connection. Reached by static transitions only, it has no converters.
                for rule in state.rules:
                    if (rule.methods is None or method in rule.methods) and rule.websocket == websocket:
                        if rule.alias and rule.map.redirect_defaults:
                            break  # werkzeug redirects to the rule's canonical URL: let it
                        return rule, dict(rule.defaults) if rule.defaults else {}
        return super().match(domain, path, method, websocket)


class StaticFirstMap(Map):
    """A werkzeug Map whose matcher is StaticFirstMatcher, and whose `bind_to_environ` remembers
    what it made of the server's side of a request.

    Of what `bind_to_environ` reads, only the path, the query and the method change from one
    callback to the next: the host (from Host, or SERVER_NAME and SERVER_PORT), the scheme (and
    a WebSocket upgrade), the script name and the arguments Flask passes stay the same. Working
    them out (the host's IDNA encoding most of all) was ~2 µs a callback; they are now worked
    out by werkzeug once per distinct set and the adapter is made from them directly.
    """

    def __init__(self, rules=None, *args, **kwargs) -> None:
        super().__init__(None, *args, **kwargs)
        # Only over the matcher this module was written against: another one is left as it is.
        if type(self._matcher) is StateMachineMatcher and hasattr(self._matcher, "_root"):
            self._matcher = StaticFirstMatcher(self._matcher.merge_slashes)
        for rule_factory in rules or ():
            self.add(rule_factory)
        self._bound: dict[tuple, tuple[str, str, str | None, str]] = {}

    def bind_to_environ(self, environ, server_name: str | None = None, subdomain: str | None = None) -> MapAdapter:
        if type(environ) is not dict or subdomain is None:  # a Request, or werkzeug's subdomain guess (it warns)
            return super().bind_to_environ(environ, server_name, subdomain)
        get = environ.get
        key = (server_name, subdomain, get("wsgi.url_scheme"), get("HTTP_HOST"), get("SERVER_NAME"),
               get("SERVER_PORT"), get("HTTP_CONNECTION"), get("HTTP_UPGRADE"), get("SCRIPT_NAME"))
        bound = self._bound.get(key)
        if bound is None:
            adapter = super().bind_to_environ(environ, server_name, subdomain)  # BadHost: raised, not kept
            if len(self._bound) >= MAX_BOUND_SERVERS:  # hosts come from the wire: never more than this
                self._bound.clear()
            self._bound[key] = (adapter.server_name, adapter.script_name, adapter.subdomain, adapter.url_scheme)
            return adapter
        server, script_name, subdomain, scheme = bound
        path_info, query = get("PATH_INFO"), get("QUERY_STRING")
        return MapAdapter(self, server, script_name, subdomain, scheme,
                          "/" if path_info is None else _wsgi_decoding_dance(path_info), environ["REQUEST_METHOD"],
                          None if query is None else _wsgi_decoding_dance(query))


MAX_BOUND_SERVERS = 64
