"""The bootstrap of a code-mode program (run as ``python -I -u -c <this file's text> W R``).

Not imported by codeloop: its text is sent. It reads the init message from fd R (the module's
source and the program's), makes ``codeloop_tools``, runs the program, and writes its ending to
fd W. Every tool call is one JSON line to W (``{"id", "tool", "args"}``) answered by one JSON
line from R (``{"id", "status", "text"}``). Standard library only.
"""

import ast
import builtins
import json
import linecache
import os
import sys
import traceback
import types

MAX_VALUE = 200_000  # characters of the return value's JSON


def main() -> None:
    out = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8", buffering=1)
    inp = os.fdopen(int(sys.argv[2]), "r", encoding="utf-8")
    init = json.loads(inp.readline())
    counter = [0]

    def channel(name, args):
        counter[0] += 1
        out.write(json.dumps({"id": counter[0], "tool": name, "args": args}, default=repr) + "\n")
        line = inp.readline()
        if not line:
            raise SystemExit("the host went away")
        return json.loads(line)

    def done(**ending):
        try:
            out.write(json.dumps({"done": ending}) + "\n")
            out.flush()
        except OSError:
            pass

    mod = types.ModuleType(init["moduleName"])
    mod.__file__ = "<" + init["moduleName"] + ">"
    _register(mod.__file__, init["module"])
    mod.__dict__["_channel"] = channel
    exec(compile(init["module"], mod.__file__, "exec"), mod.__dict__)
    sys.modules[init["moduleName"]] = mod

    program = init["program"]
    _register("<program>", program)
    scope = {"__name__": "__main__", "__builtins__": builtins}
    try:
        tree = ast.parse(program, "<program>")
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is not None:
            tree.body.pop()
        exec(compile(tree, "<program>", "exec"), scope)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<program>", "eval"), scope)
        else:
            value = scope.get("result")
    except mod.ToolCallLimit as e:
        done(status="limit", error=f"ToolCallLimit: {e}", traceback=_traceback(e))
        return
    except SystemExit as e:
        if e.code in (None, 0):
            done(status="ok", **_jsonable(None))
        else:
            done(status="error", error=f"SystemExit: {e.code}", traceback="")
        return
    except BaseException as e:  # noqa: BLE001 - the program's error is its result
        done(status="error", error=f"{type(e).__name__}: {e}", traceback=_traceback(e))
        return
    done(status="ok", **_jsonable(value))


def _register(name: str, source: str) -> None:
    lines = source.splitlines(keepends=True)
    linecache.cache[name] = (len(source), None, lines, name)


def _traceback(e: BaseException) -> str:
    """The frames of the program (and of the tools module), without the bootstrap's."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith("<")]
    lines = traceback.format_list(frames[-8:]) + traceback.format_exception_only(type(e), e)
    return "".join(lines).rstrip()


def _jsonable(value):
    kind = type(value).__name__
    try:
        text = json.dumps(value, ensure_ascii=False)
        exact = True
    except (TypeError, ValueError):
        text = json.dumps(repr(value), ensure_ascii=False)
        exact = False
    if len(text) > MAX_VALUE:
        return {"valueJson": text[:MAX_VALUE], "valueType": kind, "valueExact": exact, "valueCut": len(text)}
    return {"valueJson": text, "valueType": kind, "valueExact": exact}


if __name__ == "__main__":
    main()
